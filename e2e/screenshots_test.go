package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// screenshotDir is where OAUTHD_SCREENSHOTS=1 writes the pages' pictures
// (the README shows them).
const screenshotDir = "../docs/screenshots"

// The login, consent and error pages at desktop (1280×800) and phone
// (375×812) widths: nothing scrolls sideways, every button is inside the
// viewport, big enough to touch and not covered, and the flow works with
// taps on the phone. With OAUTHD_SCREENSHOTS=1 the test saves each page as
// docs/screenshots/<page>-<size>.png.
func TestBrowserScreenshots(t *testing.T) {
	t.Parallel()
	sizes := []struct {
		name          string
		width, height int64
		phone         bool
	}{
		{"desktop", 1280, 800, false},
		{"phone", 375, 812, true},
	}
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t)
			tb := newTab(t, app.DemoRedirectURI, "https://evil.example.net/")
			press := chromedp.Click[string]
			if size.phone {
				tb.do(chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
				press = chromedp.Tap[string]
			} else {
				tb.do(chromedp.EmulateViewport(size.width, size.height))
			}

			tb.open(s.authorizeURL())
			tb.checkLayout(size.width)
			tb.screenshot("login-" + size.name)
			tb.do(
				press(`#username`), chromedp.KeyEvent("admin"),
				press(`#password`), chromedp.KeyEvent("admin"),
			)
			tb.submit(press(`form button[type=submit]`))
			if tb.location().Path != oauthd.ConsentPath {
				t.Fatalf("after login: %s", tb.location())
			}
			tb.checkLayout(size.width)
			tb.screenshot("consent-" + size.name)
			tb.submit(press(`button[value=approve]`))
			if q := tb.nextRedirect().Query(); q.Get("code") == "" || q.Get("state") != "somestate" {
				t.Errorf("approve: %v", q)
			}

			tb.open(s.authorizeURL("redirect_uri", "https://evil.example.net/cb"))
			tb.checkLayout(size.width)
			tb.screenshot("error-" + size.name)
			tb.noConsoleErrors()
		})
	}
}

// checkLayout fails the test if the page scrolls sideways at the given
// viewport width, or if a button or input is outside it, smaller than a
// touch target (44 CSS px high) or covered by something else.
func (tb *tab) checkLayout(width int64) {
	tb.t.Helper()
	if w := eval[int64](tb, `document.documentElement.scrollWidth`); w > width {
		tb.t.Errorf("%s: the page is %d px wide in a %d px viewport", tb.location().Path, w, width)
	}
	problems := eval[[]string](tb, `(() => {
		const out = [];
		for (const e of document.querySelectorAll("button, input:not([type=hidden]), a")) {
			if (e.closest("noscript")) continue;
			e.scrollIntoView({block: "center"});
			const r = e.getBoundingClientRect();
			const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.value ? "=" + e.value : "");
			if (r.left < 0 || r.right > window.innerWidth) out.push(name + " is outside the viewport");
			if (e.tagName !== "A" && e.type !== "checkbox" && r.height < 44) out.push(name + " is " + r.height + " px high");
			const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			if (hit !== e && !e.contains(hit)) out.push(name + " is covered by " + (hit ? hit.tagName : "nothing"));
		}
		window.scrollTo(0, 0);
		return out;
	})()`)
	for _, p := range problems {
		tb.t.Errorf("%s at %d px: %s", tb.location().Path, width, p)
	}
}

// screenshot saves the viewport as docs/screenshots/<name>.png when
// OAUTHD_SCREENSHOTS=1, so ordinary runs leave the tree alone.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if os.Getenv("OAUTHD_SCREENSHOTS") != "1" {
		return
	}
	// No caret blinking into the picture, no focus ring from autofocus.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	p := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Log(fmt.Sprintf("wrote %s (%d KB)", p, len(png)/1024))
}
