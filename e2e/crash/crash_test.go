// Package crash is the crash durability test of the oauthd binary: it runs
// the real server on a database, issues and revokes tokens from many
// goroutines, kills the process with SIGKILL at random moments, restarts
// it, and checks that whatever the server acknowledged survived.
package crash

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	// The binary's code: importing it makes a change to the engine, the
	// stores or the pages rerun this test rather than reuse a cached pass
	// (go test caches on the packages a test imports, not on what the go
	// build it runs reads).
	_ "github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/internal/pgtest"
)

// Rounds: OAUTHD_CRASH_ROUNDS kills (default 6; the long mode of
// docs/reliability.md uses 50).
func rounds(t *testing.T) int {
	if s := os.Getenv("OAUTHD_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("OAUTHD_CRASH_ROUNDS=%q is not a positive number", s)
		}
		return n
	}
	return 6
}

// The test's clients and user, created with the CLI.
const (
	ccSecret    = "crash-cc-secret"
	webSecret   = "crash-web-secret"
	webRedirect = "https://app.example/cb"
	password    = "crash-user-password"
)

func TestCrashSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test builds and kills the binary; skipped with -short")
	}
	crashTest(t, filepath.Join(t.TempDir(), "o.db"))
}

func TestCrashPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test builds and kills the binary; skipped with -short")
	}
	dsn, _ := pgtest.Schema(t) // skips without OAUTHD_TEST_POSTGRES_DSN
	crashTest(t, dsn)
}

// server is one run of `oauthd serve`.
type server struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

type env struct {
	t      *testing.T
	bin    string
	db     string
	addr   string
	base   string
	suffix string // makes client ids and the username unique per run
	cc     string // client_credentials client id
	web    string // code flow client id
	user   string
	http   *http.Client
	ledger *ledger
}

func crashTest(t *testing.T, db string) {
	e := &env{t: t, db: db, ledger: newLedger()}
	e.suffix = randHex(4)
	e.cc, e.web, e.user = "cc-"+e.suffix, "web-"+e.suffix, "user-"+e.suffix
	e.bin = buildBinary(t)
	if out, err := e.cli("", "migrate"); err != nil {
		if strings.Contains(out, "not available in this build") {
			t.Skipf("this build has no store for %s: %s", db, out)
		}
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	e.mustCLI("", "client", "create", "--id", e.cc, "--secret", ccSecret, "--grant", "client_credentials", "--scope", "read")
	e.mustCLI("", "client", "create", "--id", e.web, "--secret", webSecret, "--redirect-uri", webRedirect,
		"--grant", "authorization_code,refresh_token", "--scope", "email")
	e.mustCLI(password+"\n", "user", "add", "--password-stdin", e.user)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ln.Close()
	e.base = "http://" + e.addr
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	n := rounds(t)
	people := []*http.Client{e.person(), e.person()}
	for round := range n {
		s := e.start()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); e.issueLoop(ctx) }()
		}
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); e.revokeLoop(ctx) }()
		}
		for _, p := range people {
			wg.Add(1)
			go func() { defer wg.Done(); e.codeLoop(ctx, p) }()
		}
		// Kill at a random moment once the round is under way: after at
		// least one code redemption and a few tokens (a loaded machine may
		// take seconds to get there), not at a fixed time.
		e.ledger.await(t, 30*time.Second)
		time.Sleep(randDuration(100*time.Millisecond, 1200*time.Millisecond))
		e.kill(s)
		cancel()
		wg.Wait()
		e.http.CloseIdleConnections()
		if !strings.HasPrefix(db, "postgres") {
			e.integrity()
		}
		t.Logf("round %d: killed; %s", round+1, e.ledger.summary())
	}

	// Restart once more and check what was acknowledged.
	s := e.start()
	e.verify()
	e.kill(s)
	if !strings.HasPrefix(db, "postgres") {
		e.integrity()
	}
	t.Logf("after %d kills: %s", n, e.ledger.summary())
}

// buildBinary builds ./cmd/oauthd once for the test.
func buildBinary(t *testing.T) string {
	// The test cache also knows the files a test stats: stat the command's
	// own sources, so a change to them reruns the test too.
	const cmdDir = "../../cmd/oauthd"
	entries, err := os.ReadDir(cmdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		os.Stat(filepath.Join(cmdDir, e.Name()))
	}
	bin := filepath.Join(t.TempDir(), "oauthd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/oauthd/oauthd/cmd/oauthd")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (e *env) cli(stdin string, args ...string) (string, error) {
	cmd := exec.Command(e.bin, append(args, "--db", e.db)...)
	cmd.Env = append(os.Environ(), "OAUTHD_DB=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) mustCLI(stdin string, args ...string) {
	e.t.Helper()
	if out, err := e.cli(stdin, args...); err != nil {
		e.t.Fatalf("oauthd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// start runs `oauthd serve` and waits until it answers.
func (e *env) start() *server {
	e.t.Helper()
	s := &server{out: &bytes.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(e.bin, "serve", "--db", e.db, "--addr", e.addr, "--log-level", "warn")
	s.cmd.Env = append(os.Environ(), "OAUTHD_DB=")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.http.Get(e.base + "/.well-known/oauth-authorization-server")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.done:
			e.t.Fatalf("oauthd serve exited: %s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			e.kill(s)
			e.t.Fatalf("oauthd serve did not answer in 30 s: %s", s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (e *env) kill(s *server) {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// integrity opens the SQLite file read-only and runs PRAGMA integrity_check.
func (e *env) integrity() {
	e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		e.t.Fatalf("integrity_check: %v", err)
	}
	defer rows.Close()
	var res []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		res = append(res, s)
	}
	if len(res) != 1 || res[0] != "ok" {
		e.t.Errorf("PRAGMA integrity_check: %q", res)
	}
	var fk int
	if err := db.QueryRow("SELECT count(*) FROM pragma_foreign_key_check").Scan(&fk); err != nil || fk != 0 {
		e.t.Errorf("foreign_key_check: %d rows, %v", fk, err)
	}
}

// post sends a form with client credentials. ok is true when the whole
// answer was received (status line, headers and body to the end).
func (e *env) post(ctx context.Context, path, id, sec string, form url.Values) (status int, body map[string]any, ok bool) {
	req, _ := http.NewRequestWithContext(ctx, "POST", e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	res, err := e.http.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, false
	}
	if res.StatusCode >= 500 {
		e.ledger.fiveXX(fmt.Sprintf("%s %d %s", path, res.StatusCode, b))
	}
	if len(b) > 0 && json.Unmarshal(b, &body) != nil {
		return res.StatusCode, nil, false
	}
	return res.StatusCode, body, true
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// issueLoop issues client_credentials tokens until ctx ends.
func (e *env) issueLoop(ctx context.Context) {
	for ctx.Err() == nil {
		st, body, ok := e.post(ctx, "/oauth/token", e.cc, ccSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
		if ok && st == 200 && str(body, "access_token") != "" {
			e.ledger.issued(str(body, "access_token"), e.cc, 0, true)
		}
	}
}

// revokeLoop revokes client_credentials tokens the issuers got.
func (e *env) revokeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		tok := e.ledger.take()
		if tok == "" {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		st, _, ok := e.post(ctx, "/oauth/revoke", e.cc, ccSecret, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
		if ok && st == 200 {
			e.ledger.revoked([]string{tok})
		} else {
			e.ledger.unsure([]string{tok})
		}
	}
}

// person is a browser: a cookie jar, no redirects followed.
func (e *env) person() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: e.http.Transport, CheckRedirect: e.http.CheckRedirect}
}

// codeLoop runs the code flow through the HTML login and consent forms,
// redeems the code, refreshes the tokens and sometimes revokes them.
func (e *env) codeLoop(ctx context.Context, p *http.Client) {
	for ctx.Err() == nil {
		code, err := e.authorize(ctx, p)
		if err != nil {
			continue
		}
		st, body, ok := e.post(ctx, "/oauth/token", e.web, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}})
		g := e.ledger.grant()
		e.ledger.code(code, ok && st == 200)
		if !ok || st != 200 {
			continue
		}
		at, rt := str(body, "access_token"), str(body, "refresh_token")
		e.ledger.issued(at, e.web, g, false)
		e.ledger.issued(rt, e.web, g, false)
		for range randInt(3) {
			st, body, ok := e.post(ctx, "/oauth/token", e.web, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if !ok {
				e.ledger.unsure(e.ledger.grantTokens(g))
				rt = ""
				break
			}
			if st != 200 {
				e.ledger.failure(fmt.Sprintf("refresh of an acknowledged refresh token: %d %v", st, body))
				rt = ""
				break
			}
			e.ledger.revoked([]string{rt}) // rotated: no longer active
			at, rt = str(body, "access_token"), str(body, "refresh_token")
			e.ledger.issued(at, e.web, g, false)
			e.ledger.issued(rt, e.web, g, false)
		}
		if rt != "" && randInt(2) == 0 {
			// Revoking the refresh token revokes the whole grant (RFC 7009 §2.1).
			st, _, ok := e.post(ctx, "/oauth/revoke", e.web, webSecret, url.Values{"token": {rt}})
			if ok && st == 200 {
				e.ledger.revoked(e.ledger.grantTokens(g))
			} else {
				e.ledger.unsure(e.ledger.grantTokens(g))
			}
		}
	}
}

// authorize walks authorize → login → consent and returns the code.
func (e *env) authorize(ctx context.Context, p *http.Client) (string, error) {
	u := e.base + "/oauth/authorize?" + url.Values{"client_id": {e.web}, "redirect_uri": {webRedirect}, "response_type": {"code"},
		"scope": {"email"}, "state": {randHex(4)}}.Encode()
	var form url.Values
	for range 8 {
		var req *http.Request
		if form != nil {
			req, _ = http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequestWithContext(ctx, "GET", u, nil)
		}
		form = nil
		res, err := p.Do(req)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return "", err
		}
		if res.StatusCode >= 500 {
			e.ledger.fiveXX(fmt.Sprintf("%s %d %s", u, res.StatusCode, b))
		}
		if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther && loc != "" {
			if strings.HasPrefix(loc, webRedirect+"?") {
				l, _ := url.Parse(loc)
				if c := l.Query().Get("code"); c != "" {
					return c, nil
				}
				return "", fmt.Errorf("redirect without a code: %s", loc)
			}
			next, _ := url.Parse(u)
			ref, _ := url.Parse(loc)
			u = next.ResolveReference(ref).String()
			continue
		}
		if res.StatusCode != 200 {
			return "", fmt.Errorf("%d at %s", res.StatusCode, u)
		}
		forms, err := htmlform.Parse(bytes.NewReader(b))
		if err != nil || len(forms) == 0 {
			return "", errors.New("no form")
		}
		f := forms[0]
		base, _ := url.Parse(u)
		action, _ := url.Parse(f.Action)
		u = base.ResolveReference(action).String()
		if f.Input("password") != nil {
			form = f.Values(nil, map[string]string{"username": e.user, "password": password})
		} else {
			form = f.Values(f.Button("approve"), nil)
		}
	}
	return "", errors.New("too many steps")
}

// verify checks, on the restarted server, every acknowledged fact.
func (e *env) verify() {
	t := e.t
	ctx := context.Background()
	l := e.ledger
	l.mu.Lock()
	active, inactive, codes := maps.Clone(l.active), maps.Clone(l.inactive), maps.Clone(l.codes)
	l.mu.Unlock()
	introspect := func(tok, owner string) (bool, bool) {
		sec := ccSecret
		if owner == e.web {
			sec = webSecret
		}
		st, body, ok := e.post(ctx, "/oauth/introspect", owner, sec, url.Values{"token": {tok}})
		if !ok || st != 200 {
			t.Errorf("introspect: %d %v", st, body)
			return false, false
		}
		return body["active"] == true, true
	}
	lost := 0
	for tok, owner := range active {
		if on, ok := introspect(tok, owner); ok && !on {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d tokens whose 200 the client received no longer introspect active", lost, len(active))
	}
	undone := 0
	for tok, owner := range inactive {
		if on, ok := introspect(tok, owner); ok && on {
			undone++
		}
	}
	if undone > 0 {
		t.Errorf("%d of %d acknowledged revocations or rotations no longer hold", undone, len(inactive))
	}
	// Every code is spent: redeeming any again fails (and revokes its
	// grant, so this comes after the checks above). A code whose first
	// redemption was cut by a crash may win now, once.
	again, doubles := 0, 0
	for code, wins := range codes {
		st, body, ok := e.post(ctx, "/oauth/token", e.web, webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}})
		switch {
		case ok && st == 200 && wins > 0:
			doubles++
		case ok && st == 200:
			again++
		case ok && (st != 400 || str(body, "error") != "invalid_grant"):
			t.Errorf("replaying a code: %d %v", st, body)
		}
	}
	if doubles > 0 {
		t.Errorf("%d codes were redeemed twice", doubles)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replayWins = again
	l.checked = len(active) + len(inactive)
	if len(l.failures) > 0 {
		t.Errorf("%d failures, first: %s", len(l.failures), l.failures[0])
	}
	if l.fives > 0 {
		t.Errorf("%d 5xx answers, first: %s", l.fives, l.firstFive)
	}
	if len(active) == 0 || len(inactive) == 0 || len(codes) == 0 {
		t.Errorf("nothing to check: %d active, %d inactive, %d codes", len(active), len(inactive), len(codes))
	}
}

// ledger is what the clients know for sure.
type ledger struct {
	mu sync.Mutex
	// active are tokens whose 200 was received and that were not revoked
	// or rotated since, by owner client id; inactive are tokens whose
	// revocation or rotation was acknowledged.
	active, inactive map[string]string
	// codes counts the 200 answers each code's redemption got.
	codes map[string]int
	// pool are client_credentials tokens waiting for a revoker.
	pool   []string
	grants map[int][]string
	nextG  int
	// Counters.
	issuedN, revokedN, unsureN, codesN, codesUnsure, replayWins, fives, checked int
	firstFive                                                                   string
	failures                                                                    []string
}

func newLedger() *ledger {
	return &ledger{active: map[string]string{}, inactive: map[string]string{}, codes: map[string]int{}, grants: map[int][]string{}}
}

func (l *ledger) issued(tok, owner string, g int, pool bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active[tok] = owner
	l.issuedN++
	if g != 0 {
		l.grants[g] = append(l.grants[g], tok)
	}
	if pool && randInt(3) == 0 {
		l.pool = append(l.pool, tok)
	}
}

func (l *ledger) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pool) == 0 {
		return ""
	}
	tok := l.pool[len(l.pool)-1]
	l.pool = l.pool[:len(l.pool)-1]
	return tok
}

// revoked records acknowledged revocations (or rotations).
func (l *ledger) revoked(toks []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tok := range toks {
		if owner, ok := l.active[tok]; ok {
			delete(l.active, tok)
			l.inactive[tok] = owner
			l.revokedN++
		}
	}
}

// unsure forgets tokens whose state the clients cannot know (a revocation
// or refresh whose answer was lost in a crash).
func (l *ledger) unsure(toks []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tok := range toks {
		if _, ok := l.active[tok]; ok {
			delete(l.active, tok)
			l.unsureN++
		}
	}
}

func (l *ledger) grant() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextG++
	return l.nextG
}

func (l *ledger) grantTokens(g int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.grants[g]...)
}

func (l *ledger) code(code string, won bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if won {
		l.codes[code]++
		l.codesN++
	} else {
		if _, ok := l.codes[code]; !ok {
			l.codes[code] = 0
		}
		l.codesUnsure++
	}
}

// await waits until a code redemption and five token issuances are
// acknowledged after the call.
func (l *ledger) await(t *testing.T, limit time.Duration) {
	l.mu.Lock()
	codes, tokens := l.codesN, l.issuedN
	l.mu.Unlock()
	deadline := time.Now().Add(limit)
	for {
		l.mu.Lock()
		done := l.codesN > codes && l.issuedN >= tokens+5
		l.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("no code redeemed and fewer than 5 tokens issued in %s", limit)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *ledger) fiveXX(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fives == 0 {
		l.firstFive = what
	}
	l.fives++
}

func (l *ledger) failure(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, what)
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d tokens acknowledged (%d must be active), %d revocations/rotations acknowledged, %d unknown after a crash; %d codes redeemed, %d redemptions cut by a crash (%d won on replay); %d 5xx; %d tokens checked",
		l.issuedN, len(l.active), l.revokedN, l.unsureN, l.codesN, l.codesUnsure, l.replayWins, l.fives, l.checked)
}

func randInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

func randDuration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(randInt(int(hi-lo)))
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
