// Package bench holds the scenarios of `oauthd bench`: what each
// connection of a load run does against an oauthd server, and how the
// credentials they need are made, either directly in a store before the
// server starts or over HTTP against a running server.
package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/internal/load"
	"golang.org/x/net/html"
)

// Scenarios are the names NewScenario knows.
var Scenarios = []string{"client_credentials", "code", "refresh", "introspect", "flow", "mixed"}

// Params are what the scenarios know about the server and its data.
type Params struct {
	// ClientID and ClientSecret are a confidential client allowed the
	// authorization_code, refresh_token and client_credentials grants
	// (client_credentials only for that scenario), authenticating with
	// client_secret_basic.
	ClientID, ClientSecret string
	// RedirectURI is one of the client's redirect URIs.
	RedirectURI string
	// Scope is the scope asked for in authorization requests ("" for
	// the client's default).
	Scope string
	// Username and Password sign in on the login page.
	Username, Password string
	// Verifier is the PKCE code verifier of every authorization request
	// and pre-minted code (RFC 7636); Challenge is its S256 challenge.
	Verifier string
	// Codes, RefreshTokens and AccessTokens are credentials made before
	// the run (see Seed). When a pool is nil the scenario mints what it
	// needs over HTTP while it prepares the connections, through the
	// login and consent pages (so a client with the authorization_code
	// and refresh_token grants, like the demo client, is enough).
	Codes, RefreshTokens, AccessTokens *Pool
	// CodesPerConn is how many codes each connection mints over HTTP when
	// Codes is nil, each time it is prepared (before each round); default
	// 200.
	CodesPerConn int
}

// defaults fills the zero fields that have a default.
func (p *Params) defaults() {
	if p.Verifier == "" {
		p.Verifier = "oauthd-bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
	}
	if p.CodesPerConn <= 0 {
		p.CodesPerConn = 200
	}
}

// Challenge is the S256 code challenge of v (RFC 7636 §4.2).
func Challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Pool hands out credentials, each once.
type Pool struct {
	mu    sync.Mutex
	items []string
	next  atomic.Int64
}

// NewPool returns a pool of items.
func NewPool(items []string) *Pool { return &Pool{items: items} }

// Add adds items; it must not be called once Next has been.
func (p *Pool) Add(items ...string) {
	p.mu.Lock()
	p.items = append(p.items, items...)
	p.mu.Unlock()
}

// Split shares the items not handed out yet among n new pools, in order:
// the first pools get one more when they do not divide evenly.
func (p *Pool) Split(n int) []*Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rest := p.items[min(int(p.next.Load()), len(p.items)):]
	pools := make([]*Pool, n)
	for i := range n {
		k := len(rest) / (n - i)
		if len(rest)%(n-i) != 0 {
			k++
		}
		pools[i] = NewPool(rest[:k:k])
		rest = rest[k:]
	}
	return pools
}

// Len is the number of items not handed out yet.
func (p *Pool) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, len(p.items)-int(p.next.Load()))
}

// Next returns the next item, or false when none is left.
func (p *Pool) Next() (string, bool) {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.items)) {
		return "", false
	}
	return p.items[i], true
}

// NewScenario returns the named scenario.
//
//   - client_credentials: POST /oauth/token grant_type=client_credentials
//     with Basic authentication.
//   - code: redeems one pre-minted authorization code (with PKCE) per
//     request; the run ends early if the codes run out.
//   - refresh: each connection rotates its own refresh token, request
//     after request.
//   - introspect: POST /oauth/introspect of an active access token, with
//     Basic authentication.
//   - flow: the whole authorization code flow as a new browser does it:
//     authorize, login page, login (a password hash check), consent page,
//     approve, then the code exchange. Six requests an iteration.
//   - mixed: a returning browser's flow (signed in, consent remembered),
//     then two introspections of the access token, two refreshes, the
//     revocation of the refresh token, and introspections of the revoked
//     refresh token and of the access token (its grant is revoked: both
//     must be inactive). Ten requests an iteration.
func NewScenario(name string, p *Params) (load.Scenario, error) {
	p.defaults()
	s := &scenario{name: name, p: p, basic: basicAuth(p.ClientID, p.ClientSecret)}
	switch name {
	case "client_credentials":
		s.cc = load.NewRequest("POST", oauthd.TokenPath, "grant_type=client_credentials", "Authorization", s.basic)
	case "code", "refresh", "introspect", "flow", "mixed":
	default:
		return nil, fmt.Errorf("unknown scenario %q: use one of %s", name, strings.Join(Scenarios, ", "))
	}
	return s, nil
}

// What the body of a good answer contains, as the scenarios check it.
const (
	TokenMarker  = `"access_token"`
	ActiveMarker = `"active":true`
)

// FixedMarker tells whether every request of the named scenario is a fixed
// request, one that can be sent again and again and get the same answer,
// which an external load generator such as wrk can replay; if so it
// returns what the body of every good answer contains, else why not.
func FixedMarker(name string) (string, error) {
	why := ""
	switch name {
	case "client_credentials":
		return TokenMarker, nil
	case "introspect":
		return ActiveMarker, nil
	case "code":
		why = "its requests redeem authorization codes, which are single use"
	case "refresh":
		why = "its requests rotate refresh tokens, which are single use (each rotation replaces the token)"
	case "flow":
		why = "each iteration is a new browser's authorization flow: its session cookie, consent and code are new each time, and the code is single use"
	case "mixed":
		why = "its iterations redeem codes and rotate refresh tokens, which are single use, and revoke tokens"
	default:
		return "", fmt.Errorf("unknown scenario %q: use one of %s", name, strings.Join(Scenarios, ", "))
	}
	return "", fmt.Errorf("scenario %s cannot be replayed as fixed requests: %s; only client_credentials and introspect can", name, why)
}

// basicAuth is the client_secret_basic header (RFC 6749 §2.3.1: the id and
// secret are form-urlencoded first).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

type scenario struct {
	name   string
	p      *Params
	basic  string
	cc     *load.Request
	minted atomic.Int64 // the codes minted over HTTP so far, when p.Codes is nil
}

func (s *scenario) Name() string { return s.name }

// SetupStatus says how the minting of codes over HTTP goes (see
// load.SetupReporter).
func (s *scenario) SetupStatus() string {
	if s.name != "code" || s.p.Codes != nil {
		return ""
	}
	return fmt.Sprintf("%d codes minted through the login and consent pages", s.minted.Load())
}

func (s *scenario) Worker(i int, c *load.Client) (load.Worker, error) {
	w := &worker{s: s, jar: load.Cookies{}}
	switch s.name {
	case "code":
		if s.p.Codes == nil {
			// Mint this connection's share of the codes through the
			// pages: one sign-in, then an authorization request a code
			// (one code only for the recording of an iteration).
			n := s.p.CodesPerConn
			if c.Recording() {
				n = 1
			}
			for range n {
				code, err := w.authorize(c, false)
				if err != nil {
					return nil, err
				}
				w.codes = append(w.codes, code)
				s.minted.Add(1)
			}
		}
	case "refresh":
		if err := w.newRefreshToken(c); err != nil {
			return nil, err
		}
	case "introspect":
		if t, ok := s.p.AccessTokens.take(); ok {
			w.access = t
		} else {
			// A user's access token, as resource servers mostly see.
			code, err := w.authorize(c, false)
			if err != nil {
				return nil, err
			}
			t, err := w.redeem(c, code)
			if err != nil {
				return nil, err
			}
			w.access = t.access
		}
		w.intro = s.introspect(w.access)
	case "mixed":
		// Sign in and remember the consent first: the timed iterations
		// are those of a returning browser.
		if _, err := w.authorize(c, true); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (p *Pool) take() (string, bool) {
	if p == nil {
		return "", false
	}
	return p.Next()
}

func (s *scenario) introspect(token string) *load.Request {
	return load.NewRequest("POST", oauthd.IntrospectPath, "token="+url.QueryEscape(token), "Authorization", s.basic)
}

// worker is one connection's state.
type worker struct {
	s       *scenario
	codes   []string // this connection's codes minted over HTTP
	jar     load.Cookies
	refresh string // the current refresh token (refresh scenario)
	access  string
	intro   *load.Request
}

// errStatus is an unexpected answer: an HTML error page's readable
// message, else the start of the body.
func errStatus(what string, resp *load.Response) error {
	if msg := PageMessage(resp.Get("Content-Type"), resp.Body); msg != "" {
		return fmt.Errorf("%s: status %d: %s", what, resp.Status, msg)
	}
	body := resp.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Errorf("%s: status %d: %s", what, resp.Status, bytes.TrimSpace(body))
}

// PageMessage is the readable message of oauthd's HTML error page
// (ui/templates/error.html): its title (h1), message (p role=alert), and
// the OAuth error's description (p.description) and code (the p.muted
// after it), e.g. "Invalid request: The application sent an invalid
// request. (unknown client; Error code: invalid_request)". It is "" for
// anything else.
func PageMessage(contentType string, body []byte) string {
	if !strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return ""
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	var title, message, desc, code string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := func(name string) string {
				for _, a := range n.Attr {
					if a.Key == name {
						return a.Val
					}
				}
				return ""
			}
			switch {
			case n.Data == "h1" && title == "":
				title = text(n)
			case n.Data == "p" && attr("role") == "alert" && message == "":
				message = text(n)
			case n.Data == "p" && attr("class") == "description" && desc == "":
				desc = text(n)
			case n.Data == "p" && attr("class") == "muted" && code == "":
				code = text(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if title == "" && message == "" {
		return ""
	}
	msg := strings.TrimSuffix(title, ".")
	if message != "" {
		if msg != "" {
			msg += ": "
		}
		msg += message
	}
	var details []string
	for _, d := range []string{desc, code} {
		if d != "" {
			details = append(details, d)
		}
	}
	if len(details) > 0 {
		msg += " (" + strings.Join(details, "; ") + ")"
	}
	return msg
}

// text is the text of n and its descendants, its spaces collapsed.
func text(n *html.Node) string { return strings.Join(strings.Fields(htmlform.Text(n)), " ") }

func (w *worker) Iterate(c *load.Client) error {
	s := w.s
	switch s.name {
	case "client_credentials":
		resp, err := c.Do(s.cc)
		if err != nil {
			return err
		}
		if resp.Status != 200 || !bytes.Contains(resp.Body, []byte(TokenMarker)) {
			return errStatus("client_credentials", resp)
		}
		return nil
	case "code":
		var code string
		if s.p.Codes != nil {
			var ok bool
			if code, ok = s.p.Codes.Next(); !ok {
				return load.ErrExhausted
			}
		} else {
			if len(w.codes) == 0 {
				return load.ErrExhausted
			}
			code, w.codes = w.codes[0], w.codes[1:]
		}
		_, err := w.redeem(c, code)
		return err
	case "refresh":
		if w.refresh == "" {
			if err := w.newRefreshToken(c); err != nil {
				if errors.Is(err, errNoSpare) {
					return load.ErrExhausted
				}
				return err
			}
		}
		next, _, err := w.rotate(c, w.refresh)
		w.refresh = next // "" after a failure: the next iteration starts a new chain
		return err
	case "introspect":
		resp, err := c.Do(w.intro)
		if err != nil {
			return err
		}
		if resp.Status != 200 || !bytes.Contains(resp.Body, []byte(ActiveMarker)) {
			return errStatus("introspect", resp)
		}
		return nil
	case "flow":
		clear(w.jar) // a new browser: sign in again
		code, err := w.authorize(c, false)
		if err != nil {
			return err
		}
		_, err = w.redeem(c, code)
		return err
	case "mixed":
		return w.mixed(c)
	}
	return fmt.Errorf("unknown scenario %q", s.name)
}

var errNoSpare = errors.New("no pre-minted refresh token left")

// newRefreshToken starts a refresh chain: a pre-minted refresh token, or
// one from the authorization code flow.
func (w *worker) newRefreshToken(c *load.Client) error {
	if w.s.p.RefreshTokens != nil {
		t, ok := w.s.p.RefreshTokens.Next()
		if !ok {
			return errNoSpare
		}
		w.refresh = t
		return nil
	}
	code, err := w.authorize(c, false)
	if err != nil {
		return err
	}
	toks, err := w.redeem(c, code)
	if err != nil {
		return err
	}
	if w.refresh = toks.refresh; w.refresh == "" {
		return errors.New("the code exchange gave no refresh token: give the client the refresh_token grant")
	}
	return nil
}

type tokens struct{ access, refresh string }

// redeem exchanges a code at the token endpoint.
func (w *worker) redeem(c *load.Client, code string) (tokens, error) {
	p := w.s.p
	form := "grant_type=authorization_code&code=" + url.QueryEscape(code) + "&redirect_uri=" + url.QueryEscape(p.RedirectURI) +
		"&code_verifier=" + url.QueryEscape(p.Verifier)
	resp, err := c.Do(load.NewRequest("POST", oauthd.TokenPath, form, "Authorization", w.s.basic))
	if err != nil {
		return tokens{}, err
	}
	if resp.Status != 200 {
		return tokens{}, errStatus("code exchange", resp)
	}
	t := tokens{field(resp.Body, "access_token"), field(resp.Body, "refresh_token")}
	if t.access == "" {
		return t, errStatus("code exchange without access_token", resp)
	}
	return t, nil
}

// rotate uses a refresh token and returns its successor.
func (w *worker) rotate(c *load.Client, rt string) (refresh, access string, err error) {
	resp, err := c.Do(load.NewRequest("POST", oauthd.TokenPath, "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt), "Authorization", w.s.basic))
	if err != nil {
		return "", "", err
	}
	if resp.Status != 200 {
		return "", "", errStatus("refresh", resp)
	}
	refresh, access = field(resp.Body, "refresh_token"), field(resp.Body, "access_token")
	if refresh == "" || access == "" {
		return "", "", errStatus("refresh without tokens", resp)
	}
	return refresh, access, nil
}

// mixed is one iteration of the mixed scenario.
func (w *worker) mixed(c *load.Client) error {
	code, err := w.authorize(c, true)
	if err != nil {
		return err
	}
	t, err := w.redeem(c, code)
	if err != nil {
		return err
	}
	for range 2 {
		if err := w.checkActive(c, t.access, true); err != nil {
			return err
		}
	}
	rt := t.refresh
	for range 2 {
		if rt, _, err = w.rotate(c, rt); err != nil {
			return err
		}
	}
	resp, err := c.Do(load.NewRequest("POST", oauthd.RevokePath, "token="+url.QueryEscape(rt)+"&token_type_hint=refresh_token", "Authorization", w.s.basic))
	if err != nil {
		return err
	}
	if resp.Status != 200 {
		return errStatus("revoke", resp)
	}
	if err := w.checkActive(c, rt, false); err != nil {
		return err
	}
	// Revoking the refresh token revoked its grant (RFC 7009 §2.1): the
	// access token introspected above, which a cache may hold, is no
	// longer active either.
	return w.checkActive(c, t.access, false)
}

func (w *worker) checkActive(c *load.Client, token string, want bool) error {
	resp, err := c.Do(w.s.introspect(token))
	if err != nil {
		return err
	}
	if resp.Status != 200 || bytes.Contains(resp.Body, []byte(ActiveMarker)) != want {
		return errStatus(fmt.Sprintf("introspect (want active %v)", want), resp)
	}
	return nil
}

// authorize runs an authorization request through the pages the way a
// browser does (following redirects, signing in, approving; with remember,
// ticking "remember this decision") and returns the code the client gets.
func (w *worker) authorize(c *load.Client, remember bool) (string, error) {
	p := w.s.p
	q := url.Values{"client_id": {p.ClientID}, "redirect_uri": {p.RedirectURI}, "response_type": {"code"},
		"state": {"bench"}, "code_challenge": {Challenge(p.Verifier)}, "code_challenge_method": {"S256"}}
	if p.Scope != "" {
		q.Set("scope", p.Scope)
	}
	target := oauthd.AuthorizePath + "?" + q.Encode()
	method, body := "GET", ""
	signedIn := false
	throttled := 0
	for step := 0; step < 10; step++ {
		req := load.NewRequest(method, target, body)
		if ck := w.jar.Header(); ck != "" {
			req.Header = append(req.Header, load.Field{Name: "Cookie", Value: ck})
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		if resp.Status == 429 && method == "POST" && throttled < 60 {
			// The server's per-account login limit: more sign-ins of one
			// user at once than its max_failures are answered 429 with
			// Retry-After (every connection signs in as the same user
			// against a server the bench did not start). The same form
			// is sent again once that has passed.
			throttled++
			step--
			time.Sleep(retryAfter(resp.Get("Retry-After")))
			continue
		}
		w.jar.Update(resp)
		if resp.Status/100 == 3 {
			loc := resp.Get("Location")
			if strings.HasPrefix(loc, p.RedirectURI) {
				u, err := url.Parse(loc)
				if err != nil {
					return "", err
				}
				code := u.Query().Get("code")
				if code == "" {
					return "", fmt.Errorf("redirected to the client without a code: %s", loc)
				}
				return code, nil
			}
			if target, err = resolve(target, loc); err != nil {
				return "", err
			}
			method, body = "GET", ""
			continue
		}
		if resp.Status != 200 {
			return "", errStatus(method+" "+pathOf(target), resp)
		}
		forms, err := htmlform.Parse(bytes.NewReader(resp.Body))
		if err != nil || len(forms) == 0 {
			return "", errStatus("no form on "+pathOf(target), resp)
		}
		f := forms[0]
		var values url.Values
		if f.Input("password") != nil {
			if signedIn {
				return "", errors.New("the login page came back after signing in: wrong username or password")
			}
			signedIn = true
			values = f.Values(nil, map[string]string{"username": p.Username, "password": p.Password})
		} else {
			btn := f.Button("approve")
			if btn == nil {
				return "", errStatus("no approve button on "+pathOf(target), resp)
			}
			set := map[string]string{}
			if remember && slices.ContainsFunc(f.Inputs, func(in htmlform.Input) bool { return in.Name == "remember" }) {
				set["remember"] = "1"
			}
			values = f.Values(btn, set)
		}
		if target, err = resolve(target, f.Action); err != nil {
			return "", err
		}
		method, body = "POST", values.Encode()
	}
	return "", errors.New("no code after 10 steps")
}

// retryAfter is a Retry-After of seconds, from 1 to 10 s (a lockout's
// longer wait is cut short: the next attempt says again).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		n = 1
	}
	return time.Duration(min(n, 10)) * time.Second
}

// resolve resolves ref against the request target base and returns the
// path and query of the result.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bad location %q: %w", ref, err)
	}
	return b.ResolveReference(r).RequestURI(), nil
}

func pathOf(target string) string {
	p, _, _ := strings.Cut(target, "?")
	return p
}

// field returns a string member of a flat JSON object without decoding
// the rest (tokens are base64url: no escapes).
func field(body []byte, name string) string {
	key := `"` + name + `":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
