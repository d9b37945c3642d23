package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser is one headless Chromium for the whole package, started by
// the first test that needs it; every test gets a tab in a fresh incognito
// browser context (its own cookies), so tests cannot see each other's
// sessions and may run in parallel.
var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
	stopBrowser = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopBrowser()
	if seedDir != "" {
		os.RemoveAll(seedDir)
	}
	os.Exit(code)
}

// tabTimeout bounds each browser test, so a page that never loads fails
// the test instead of hanging the package.
const tabTimeout = 45 * time.Second

// chromiumPath returns the Chromium binary, or "" when none is installed.
// OAUTHD_CHROMIUM names another binary (a Chrome, a Chromium elsewhere).
func chromiumPath() string {
	if p := os.Getenv("OAUTHD_CHROMIUM"); p != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
		return ""
	}
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireBrowser skips the test when Chromium is missing, or fails it when
// OAUTHD_REQUIRE_BROWSER=1 (CI installs Chromium, so a skip there would
// hide a broken setup).
func requireBrowser(t *testing.T) string {
	t.Helper()
	p := chromiumPath()
	if p != "" {
		return p
	}
	if os.Getenv("OAUTHD_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium not installed but OAUTHD_REQUIRE_BROWSER=1: apt-get install -y chromium")
	}
	t.Skip("chromium not installed: apt-get install -y chromium")
	return ""
}

func startBrowser(path string) {
	dir, err := os.MkdirTemp("", "oauthd-chromium-")
	if err != nil {
		browserErr = err
		return
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		// Tests run in parallel tabs: none may be throttled as a
		// background tab would be.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-ipc-flooding-protection", true),
		chromedp.Flag("disable-hang-monitor", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The first Do starts the browser; its context must have no deadline,
	// the browser lives as long as it.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir)
		browserErr = fmt.Errorf("starting %s: %w", path, err)
		return
	}
	browserCtx = ctx
	stopBrowser = func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir)
	}
}

// tab is one browser tab of a test.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	captured []string    // URLs answered by the fake client
	redirect chan string // the same, as they come
	console  []string    // console errors and CSP violations
}

// newTab opens a tab in a fresh incognito context, with a desktop viewport.
// Requests to the URL prefixes in intercept (the clients' redirect URIs)
// never leave the machine: the tab records their URL and answers them with
// a small page of its own.
func newTab(t *testing.T, intercept ...string) *tab {
	t.Helper()
	path := requireBrowser(t)
	browserOnce.Do(func() { startBrowser(path) })
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(tabCtx); err != nil { // opens the tab
		cancelTab()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, tabTimeout)
	t.Cleanup(func() { cancel(); cancelTab() })
	tb := &tab{t: t, ctx: ctx, redirect: make(chan string, 8)}

	// Console messages: exceptions, errors and CSP reports fail the test
	// (checked by noConsoleErrors).
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// An error page's 4xx status is logged as a failed load; that
			// is the page working, not failing.
			if strings.HasPrefix(m.Text, "Failed to load resource: the server responded with a status of 4") {
				continue
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy") {
				tb.mu.Lock()
				tb.console = append(tb.console, m.String())
				tb.mu.Unlock()
			}
		}
	}()

	if len(intercept) > 0 {
		tb.intercept(intercept)
	}
	// A headless tab in the background has no focus; emulating it makes
	// :focus-visible and the keyboard behave as in a window in front.
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// intercept answers every request to the origins of the URLs itself: a
// document request (the browser following a redirect to the client) is
// recorded and gets a small page, an image (a client's logo) a small SVG,
// anything else (a favicon) a 404. So the clients' unreachable addresses
// are never even looked up in DNS.
func (tb *tab) intercept(urls []string) {
	tb.t.Helper()
	var patterns []*fetch.RequestPattern
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			tb.t.Fatal(err)
		}
		patterns = append(patterns, &fetch.RequestPattern{URLPattern: u.Scheme + "://" + u.Host + "/*"})
	}
	paused := chromedp.Events(tb.ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: patterns}); err != nil {
		tb.t.Fatal(err)
	}
	html := []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			answer := fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: http.StatusNotFound}
			switch ev.ResourceType {
			case network.ResourceTypeImage: // a client's logo
				answer.ResponseCode = http.StatusOK
				answer.ResponseHeaders = []*fetch.HeaderEntry{{Name: "Content-Type", Value: "image/svg+xml"}}
				answer.Body = []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle cx="4" cy="4" r="4" fill="#0a7"/></svg>`)
			case network.ResourceTypeDocument:
				u := ev.Request.URL + ev.Request.URLFragment
				tb.mu.Lock()
				tb.captured = append(tb.captured, u)
				tb.mu.Unlock()
				select {
				case tb.redirect <- u:
				default:
				}
				answer.ResponseCode, answer.ResponseHeaders = http.StatusOK, html
				answer.Body = []byte(`<!doctype html><html lang=en><link rel=icon href="data:,"><title>client</title><p id=client>The client got the answer.</p></html>`)
			}
			chromedp.Call(tb.ctx, fetch.FulfillRequest, answer)
		}
	}()
}

// do runs actions and fails the test on error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

// open navigates and returns the response of the page.
func (tb *tab) open(u string) *network.Response {
	tb.t.Helper()
	res, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		tb.t.Fatalf("opening %s: %v", u, err)
	}
	return res
}

// submit runs actions that submit a form (a click, Enter) and waits for the
// next page.
func (tb *tab) submit(actions ...chromedp.Action[chromedp.Void]) *network.Response {
	tb.t.Helper()
	res, err := chromedp.RunResponse(tb.ctx, actions...)
	if err != nil {
		tb.t.Fatalf("submitting: %v", err)
	}
	return res
}

// eval evaluates a JavaScript expression.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// text is the visible text of the first element matching the CSS selector,
// without the invisible marks that isolate names in the pages' sentences
// (U+2068 … U+2069).
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(strings.NewReplacer("\u2068", "", "\u2069", "").Replace(s))
}

// has reports whether an element matches the CSS selector now.
func (tb *tab) has(sel string) bool {
	tb.t.Helper()
	return eval[bool](tb, fmt.Sprintf("document.querySelector(%q) !== null", sel))
}

// location is the URL of the page.
func (tb *tab) location() *url.URL {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		tb.t.Fatal(err)
	}
	return u
}

// login fills the login form with the mouse and the keyboard and submits it.
func (tb *tab) login(username, password string) *network.Response {
	tb.t.Helper()
	tb.do(
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("username").value = ""`),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
	)
	return tb.submit(chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
}

// decide clicks Approve or Deny on the consent page.
func (tb *tab) decide(action string) *network.Response {
	tb.t.Helper()
	return tb.submit(chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[name=action][value=%s]`, action))))
}

// nextRedirect waits for the next answer the fake client gets.
func (tb *tab) nextRedirect() *url.URL {
	tb.t.Helper()
	select {
	case s := <-tb.redirect:
		u, err := url.Parse(s)
		if err != nil {
			tb.t.Fatal(err)
		}
		return u
	case <-tb.ctx.Done():
		tb.t.Fatalf("no redirect to the client: %v (the page is %s)", tb.ctx.Err(), tb.location())
		return nil
	}
}

// capturedURLs is every request the fake client got.
func (tb *tab) capturedURLs() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.captured...)
}

// noConsoleErrors fails the test if a page logged an error, an exception
// or a Content-Security-Policy violation.
func (tb *tab) noConsoleErrors() {
	tb.t.Helper()
	// Console messages arrive asynchronously; give the last ones a moment.
	time.Sleep(50 * time.Millisecond)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		tb.t.Errorf("console: %s", m)
	}
}

// isTimeout reports whether err is a context deadline.
func isTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
