package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// fakeStore is a memstore whose Ping and DeleteExpired a test controls.
type fakeStore struct {
	*memstore.Store

	mu       sync.Mutex
	pingErr  error
	pingWait chan struct{} // when set, Ping signals pinged and waits for it to close
	pinged   chan struct{}
	// clientHang, when set, makes Client signal it (closing it) and
	// wait for its context to end, as a store whose database went silent.
	clientHang chan struct{}
	inflight   sync.WaitGroup
	expired    int   // records DeleteExpired pretends are expired
	limits     []int // the limit of every DeleteExpired call
	runs       chan struct{}
	// onDelete, when set, is called by every DeleteExpired (under mu)
	// with its limit; an error it returns is DeleteExpired's, which then
	// deletes nothing.
	onDelete func(limit int) error
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func newFakeStore() *fakeStore {
	return &fakeStore{Store: memstore.New(), runs: make(chan struct{}, 100)}
}

func (s *fakeStore) Ping(ctx context.Context) error {
	s.mu.Lock()
	err, wait, pinged := s.pingErr, s.pingWait, s.pinged
	s.mu.Unlock()
	if wait != nil {
		close(pinged)
		<-wait
	}
	return err
}

func (s *fakeStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	s.mu.Lock()
	hang := s.clientHang
	s.clientHang = nil
	s.mu.Unlock()
	if hang != nil {
		s.inflight.Add(1)
		defer s.inflight.Done()
		close(hang)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.Client(ctx, id)
}

// Close waits for the calls in flight, as pgxpool's Close waits for the
// connections in use.
func (s *fakeStore) Close() error {
	s.inflight.Wait()
	return s.Store.Close()
}

func (s *fakeStore) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, limit)
	select {
	case s.runs <- struct{}{}:
	default:
	}
	if s.onDelete != nil {
		if err := s.onDelete(limit); err != nil {
			return 0, err
		}
	}
	n := min(limit, s.expired)
	s.expired -= n
	return n, nil
}

func openFake(t *testing.T, cfg Config, store *fakeStore) *Main {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.LogLevel = "error"
	m, err := open(context.Background(), cfg, store, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func serve(t *testing.T, m *Main) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// The garbage collection deletes in batches of gc.batch_size until a batch
// comes back short, and counts what it deleted.
func TestCollectGarbageBatches(t *testing.T) {
	s := newFakeStore()
	m := openFake(t, Config{GCBatchSize: 500}, s)
	defer m.closeEarly()
	s.expired = 1200
	n, err := m.CollectGarbage(context.Background(), time.Now())
	if err != nil || n != 1200 {
		t.Fatalf("CollectGarbage = %d, %v; want 1200", n, err)
	}
	if got := s.limits; len(got) != 3 || got[0] != 500 || got[1] != 500 || got[2] != 500 {
		t.Errorf("DeleteExpired limits %v; want three batches of 500", got)
	}
	if got := counterValue(m.Metrics.gcDeleted); got != 1200 {
		t.Errorf("oauthd_gc_deleted_total %v; want 1200", got)
	}
	// A backlog is worked off past the 100 batches a run of earlier
	// versions stopped at: see TestCollectGarbageDrainsABacklog.
}

// The server runs the garbage collection on its interval, and stops it at
// shutdown.
func TestCollectGarbageLoop(t *testing.T) {
	s := newFakeStore()
	m := openFake(t, Config{GCBatchSize: 7}, s)
	m.Config.GCInterval = 20 * time.Millisecond // below what the config allows
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	for range 3 {
		select {
		case <-s.runs:
		case <-time.After(5 * time.Second):
			t.Fatal("the garbage collection did not run")
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	s.mu.Lock()
	calls := len(s.limits)
	s.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.limits) != calls {
		t.Error("the garbage collection ran after Shutdown")
	}
	if s.limits[0] != 7 {
		t.Errorf("batch size %d; want gc.batch_size 7", s.limits[0])
	}
	if got := counterValue(m.Metrics.gcRuns); got < 3 {
		t.Errorf("oauthd_gc_runs_total %v; want at least 3", got)
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// /readyz is 503 while the store's Ping fails, and /healthz stays 200.
func TestReadyz(t *testing.T) {
	s := newFakeStore()
	m := openFake(t, Config{}, s)
	serve(t, m)
	base := "http://" + m.Addr()
	if st, body := get(t, http.DefaultClient, base+"/readyz"); st != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q; want 200 ok", st, body)
	}
	s.mu.Lock()
	s.pingErr = errors.New("connection refused")
	s.mu.Unlock()
	if st, _ := get(t, http.DefaultClient, base+"/readyz"); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store down: %d; want 503", st)
	}
	if st, body := get(t, http.DefaultClient, base+"/healthz"); st != 200 || body != "ok\n" {
		t.Errorf("/healthz with the store down: %d %q; want 200 ok", st, body)
	}
	if got := counterValue(m.Metrics.storeErrors.WithLabelValues("Ping")); got != 1 {
		t.Errorf("oauthd_store_errors_total{op=Ping} %v; want 1", got)
	}
}

// Shutdown lets a request in flight finish, then the server is gone.
func TestShutdownDrains(t *testing.T) {
	s := newFakeStore()
	m := openFake(t, Config{}, s)
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	release := make(chan struct{})
	s.mu.Lock()
	s.pingWait, s.pinged = release, make(chan struct{})
	pinged := s.pinged
	s.mu.Unlock()

	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + m.Addr() + "/readyz")
		if err != nil {
			resc <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		resc <- result{status: res.StatusCode, body: string(b)}
	}()
	<-pinged // the request is in flight
	shut := make(chan error, 1)
	go func() { shut <- m.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		t.Error("new connections are accepted during shutdown")
	}
	close(release)
	r := <-resc
	if r.err != nil || r.status != 200 || r.body != "ok\n" {
		t.Errorf("in-flight request: %d %q %v; want 200 ok", r.status, r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// A request still waiting on its store when the shutdown timeout passes
// (a database that stopped answering) gives up then: Shutdown returns soon
// after its deadline, not when the store would have answered.
func TestShutdownEndsHungRequests(t *testing.T) {
	s := newFakeStore()
	m := openFake(t, Config{}, s)
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	hang := make(chan struct{})
	s.mu.Lock()
	s.clientHang = hang
	s.mu.Unlock()
	go func() {
		res, err := http.PostForm("http://"+m.Addr()+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}})
		if err == nil {
			res.Body.Close()
		}
	}()
	<-hang // the request waits on the store
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- m.Shutdown(ctx) }()
	select {
	case <-shut:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits 10s after its 300ms timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 300ms timeout", d)
	}
	<-done
}

// With metrics.addr, /metrics, /healthz and /readyz move to that listener.
func TestMetricsAddr(t *testing.T) {
	m := openFake(t, Config{MetricsAddr: "127.0.0.1:0"}, newFakeStore())
	serve(t, m)
	if st, body := get(t, http.DefaultClient, "http://"+m.MetricsAddr()+"/metrics"); st != 200 || !strings.Contains(body, "oauthd_http_requests_total") && !strings.Contains(body, "oauthd_tokens_issued_total") {
		t.Errorf("metrics listener /metrics: %d", st)
	}
	if st, _ := get(t, http.DefaultClient, "http://"+m.MetricsAddr()+"/readyz"); st != 200 {
		t.Errorf("metrics listener /readyz: %d", st)
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if st, _ := get(t, http.DefaultClient, "http://"+m.Addr()+p); st != http.StatusNotFound {
			t.Errorf("main listener %s: %d; want 404", p, st)
		}
	}
}

// metrics.enabled: false removes /metrics; health stays.
func TestMetricsDisabled(t *testing.T) {
	m := openFake(t, Config{MetricsDisabled: true}, newFakeStore())
	serve(t, m)
	if st, _ := get(t, http.DefaultClient, "http://"+m.Addr()+"/metrics"); st != http.StatusNotFound {
		t.Errorf("/metrics: %d; want 404", st)
	}
	if st, _ := get(t, http.DefaultClient, "http://"+m.Addr()+"/healthz"); st != 200 {
		t.Errorf("/healthz: %d; want 200", st)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the
// common name cn, and returns its pool.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.CertPool {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// With tls.cert_file and tls.key_file the server speaks HTTPS itself, its
// default issuer is https, and a renewed certificate is picked up without
// a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeCert(t, certFile, keyFile, "first")
	m := openFake(t, Config{TLSCertFile: certFile, TLSKeyFile: keyFile}, newFakeStore())
	serve(t, m)
	if !strings.HasPrefix(m.Config.Issuer, "https://127.0.0.1:") {
		t.Errorf("default issuer %s; want https://127.0.0.1:<port>", m.Config.Issuer)
	}
	client := func(pool *x509.CertPool) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	res, err := client(pool).Get("https://" + m.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Errorf("certificate %s; want first", res.TLS.PeerCertificates[0].Subject.CommonName)
	}
	if _, err := http.Get("http://" + m.Addr() + "/healthz"); err == nil {
		// Go's server answers plain HTTP on a TLS port with a 400; either way no ok.
		t.Log("plain HTTP got an answer (a 400 from the TLS server)")
	}

	time.Sleep(10 * time.Millisecond) // a later modification time
	pool2 := writeCert(t, certFile, keyFile, "second")
	m.certs.mu.Lock()
	m.certs.checkEvery = 0
	m.certs.mu.Unlock()
	res, err = client(pool2).Get("https://" + m.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.TLS.PeerCertificates[0].Subject.CommonName != "second" {
		t.Errorf("after renewal: certificate %s; want second", res.TLS.PeerCertificates[0].Subject.CommonName)
	}
}

// Store failures are counted by method; the answers the protocol expects
// (not found, already used) are not failures.
func TestStoreErrorsCounted(t *testing.T) {
	m := NewMetrics()
	s := m.instrument(&failingStore{Store: memstore.New()})
	ctx := context.Background()
	s.Client(ctx, "nobody")              // ErrNotFound
	s.UserByUsername(ctx, "x")           // a failure
	s.UserByUsername(ctx, "x")           // another
	s.DeleteExpired(ctx, time.Now(), 10) // fine
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s.UserByUsername(cctx, "x") // the request went away: not a store failure
	if got := counterValue(m.storeErrors.WithLabelValues("UserByUsername")); got != 2 {
		t.Errorf("UserByUsername failures %v; want 2", got)
	}
	if got := counterValue(m.storeErrors.WithLabelValues("Client")); got != 0 {
		t.Errorf("Client failures %v; want 0 (not found is an answer)", got)
	}
}

type failingStore struct{ *memstore.Store }

func (s *failingStore) UserByUsername(ctx context.Context, _ string) (*oauthd.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("disk I/O error")
}

// A Shutdown that comes before Serve (a SIGTERM right at start-up) makes
// Serve return at once instead of serving forever.
func TestShutdownBeforeServe(t *testing.T) {
	m := openFake(t, Config{}, newFakeStore())
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		t.Error("the listener is still open")
	}
}

// The metrics wrapper is an oauthd.CodeRedeemer exactly when the store it
// wraps is one, so that the Provider's one-write redemption survives it.
// A refused redemption (issue's error) is not a store failure; a failed
// commit is.
func TestInstrumentKeepsCodeRedeemer(t *testing.T) {
	m := NewMetrics()
	if _, ok := m.instrument(struct{ oauthd.Storage }{memstore.New()}).(oauthd.CodeRedeemer); ok {
		t.Error("the wrapper of a store without RedeemAuthCode is a CodeRedeemer")
	}
	s := newRedeemFailingStore()
	r, ok := m.instrument(s).(oauthd.CodeRedeemer)
	if !ok {
		t.Fatal("the wrapper of a CodeRedeemer is not one")
	}
	ctx := context.Background()
	now := time.Now()
	for _, h := range []string{"refused", "fails", "ok"} {
		if err := s.CreateAuthCode(ctx, &oauthd.AuthCode{Hash: h, GrantID: "g-" + h, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	refusal := oauthd.NewError(oauthd.ErrorInvalidGrant, "code_verifier does not match the code_challenge")
	if _, err := r.RedeemAuthCode(ctx, "refused", now, func(*oauthd.AuthCode) ([]*oauthd.Token, error) { return nil, refusal }); err != refusal {
		t.Errorf("refused redemption through the wrapper: err = %v; want issue's error as it is", err)
	}
	issue := func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return []*oauthd.Token{{Hash: c.Hash + "-at", Kind: oauthd.AccessToken, GrantID: c.GrantID, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}, nil
	}
	if _, err := r.RedeemAuthCode(ctx, "unknown", now, issue); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("unknown code: err = %v; want ErrNotFound", err)
	}
	// The refused redemption left the code unused; now it is used.
	if _, err := r.RedeemAuthCode(ctx, "refused", now, issue); err != nil {
		t.Errorf("redemption after a refused one: %v", err)
	}
	if _, err := r.RedeemAuthCode(ctx, "refused", now, issue); !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Errorf("used code: err = %v; want ErrAlreadyUsed", err)
	}
	if _, err := r.RedeemAuthCode(ctx, "ok", now, issue); err != nil {
		t.Errorf("redemption through the wrapper: %v", err)
	}
	if _, err := s.Token(ctx, "ok-at"); err != nil {
		t.Errorf("token of the redemption through the wrapper: %v", err)
	}
	s.fail = true
	if _, err := r.RedeemAuthCode(ctx, "fails", now, issue); err == nil {
		t.Error("failing store: RedeemAuthCode succeeded")
	}
	if got := counterValue(m.storeErrors.WithLabelValues("RedeemAuthCode")); got != 1 {
		t.Errorf("RedeemAuthCode failures %v; want 1 (the failed commit only)", got)
	}
}

// redeemFailingStore is a memstore whose RedeemAuthCode fails after issue
// succeeded, as a failed commit does, once fail is set.
type redeemFailingStore struct {
	*memstore.Store
	fail bool
}

func newRedeemFailingStore() *redeemFailingStore { return &redeemFailingStore{Store: memstore.New()} }

func (s *redeemFailingStore) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	if !s.fail {
		return s.Store.RedeemAuthCode(ctx, hash, now, issue)
	}
	c, err := s.Store.ConsumeAuthCode(ctx, hash, now)
	if err != nil {
		return c, err
	}
	if _, err := issue(c); err != nil {
		return c, err
	}
	return nil, errors.New("commit: disk I/O error")
}

// The main listener's handler routes as one ServeMux holding the ops
// routes and the Provider at "/" would: same status and Allow header for
// every method and path, with metrics on and off; except that the ops
// paths answer other methods than GET and HEAD with 405 and Allow, as the
// metrics listener's mux does, where such a mux would hand them to the
// Provider's 404.
func TestOpsFirstRoutesAsOneMux(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		m := openFake(t, Config{MetricsDisabled: disabled}, newFakeStore())
		ref := http.NewServeMux()
		m.opsRoutes(ref)
		ref.Handle("/", m.Provider)
		for _, method := range []string{"GET", "HEAD", "POST", "DELETE", "OPTIONS"} {
			for _, path := range []string{"/healthz", "/readyz", "/metrics", "/healthz/", "//healthz", "/metrics/x", "/oauth/token", "/", "/nope"} {
				want := httptest.NewRecorder()
				if m.opsPaths()[path] && method != "GET" && method != "HEAD" {
					want.Header().Set("Allow", "GET, HEAD")
					want.Code = http.StatusMethodNotAllowed
				} else {
					ref.ServeHTTP(want, httptest.NewRequest(method, path, nil))
				}
				got := httptest.NewRecorder()
				m.Handler().ServeHTTP(got, httptest.NewRequest(method, path, nil))
				if got.Code != want.Code || got.Header().Get("Allow") != want.Header().Get("Allow") || got.Header().Get("Location") != want.Header().Get("Location") {
					t.Errorf("metrics disabled %v: %s %s: %d (Allow %q); one mux answers %d (Allow %q)", disabled, method, path,
						got.Code, got.Header().Get("Allow"), want.Code, want.Header().Get("Allow"))
				}
			}
		}
	}
}

// The metrics wrapper is an oauthd.RefreshRotator exactly when the store
// it wraps is one, whether or not that store is a CodeRedeemer too, so
// that the Provider's one-write refresh survives it. A refused rotation
// (rotate's error) is not a store failure; a failed commit is.
func TestInstrumentKeepsRefreshRotator(t *testing.T) {
	m := NewMetrics()
	ms := memstore.New()
	for _, tc := range []struct {
		name             string
		store            oauthd.Storage
		redeems, rotates bool
	}{
		{"neither", struct{ oauthd.Storage }{ms}, false, false},
		{"CodeRedeemer", struct {
			oauthd.Storage
			oauthd.CodeRedeemer
		}{ms, ms}, true, false},
		{"RefreshRotator", struct {
			oauthd.Storage
			oauthd.RefreshRotator
		}{ms, ms}, false, true},
		{"both", ms, true, true},
	} {
		w := m.instrument(tc.store)
		_, redeems := w.(oauthd.CodeRedeemer)
		_, rotates := w.(oauthd.RefreshRotator)
		if redeems != tc.redeems || rotates != tc.rotates {
			t.Errorf("%s: the wrapper is a CodeRedeemer %v, a RefreshRotator %v; want %v, %v", tc.name, redeems, rotates, tc.redeems, tc.rotates)
		}
	}

	s := &rotateFailingStore{Store: memstore.New()}
	r := m.instrument(s).(oauthd.RefreshRotator)
	ctx := context.Background()
	now := time.Now()
	for _, h := range []string{"refused", "fails", "ok"} {
		if err := s.CreateTokens(ctx, &oauthd.Token{Hash: h, Kind: oauthd.RefreshToken, GrantID: "g-" + h, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	refusal := oauthd.NewError(oauthd.ErrorInvalidScope, "the requested scope exceeds the scope originally granted")
	if _, err := r.RotateRefreshTokenFunc(ctx, "refused", now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) { return nil, nil, refusal }); err != refusal {
		t.Errorf("refused rotation through the wrapper: err = %v; want rotate's error as it is", err)
	}
	rotate := func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return nil, []*oauthd.Token{{Hash: old.Hash + "-next", Kind: oauthd.RefreshToken, GrantID: old.GrantID, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}, nil
	}
	if _, err := r.RotateRefreshTokenFunc(ctx, "unknown", now, rotate); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("unknown token: err = %v; want ErrNotFound", err)
	}
	if _, err := r.RotateRefreshTokenFunc(ctx, "ok", now, rotate); err != nil {
		t.Errorf("rotation through the wrapper: %v", err)
	}
	if _, err := r.RotateRefreshTokenFunc(ctx, "ok", now, rotate); !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Errorf("rotated token: err = %v; want ErrAlreadyUsed", err)
	}
	if _, err := s.Token(ctx, "ok-next"); err != nil {
		t.Errorf("token of the rotation through the wrapper: %v", err)
	}
	s.fail = true
	if _, err := r.RotateRefreshTokenFunc(ctx, "fails", now, rotate); err == nil {
		t.Error("failing store: RotateRefreshTokenFunc succeeded")
	}
	if got := counterValue(m.storeErrors.WithLabelValues("RotateRefreshToken")); got != 1 {
		t.Errorf("RotateRefreshToken failures %v; want 1 (the failed commit only)", got)
	}
}

// rotateFailingStore is a memstore whose RotateRefreshTokenFunc fails
// after rotate succeeded, as a failed commit does, once fail is set.
type rotateFailingStore struct {
	*memstore.Store
	fail bool
}

func (s *rotateFailingStore) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	if !s.fail {
		return s.Store.RotateRefreshTokenFunc(ctx, hash, now, rotate)
	}
	old, err := s.Store.Token(ctx, hash)
	if err != nil {
		return nil, err
	}
	if _, _, err := rotate(old); err != nil {
		return old, err
	}
	return nil, errors.New("commit: disk I/O error")
}

// The ops paths' answers are never sniffed nor cached, on the main
// listener and on metrics.addr's.
func TestOpsHeaders(t *testing.T) {
	for _, cfg := range []Config{{}, {MetricsAddr: "127.0.0.1:0"}} {
		m := openFake(t, cfg, newFakeStore())
		serve(t, m)
		base := "http://" + m.Addr()
		if cfg.MetricsAddr != "" {
			base = "http://" + m.MetricsAddr()
		}
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			res, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s%s: %d, X-Content-Type-Options %q, Cache-Control %q; want 200, nosniff, no-store", base, p, res.StatusCode,
					res.Header.Get("X-Content-Type-Options"), res.Header.Get("Cache-Control"))
			}
		}
	}
}
