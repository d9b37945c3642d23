package app

import (
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oauthd/oauthd"
)

// Metrics are the Prometheus metrics of one server, in a registry of its
// own (no package globals, so tests can run several servers):
//
//	oauthd_http_requests_total{endpoint,method,code}
//	oauthd_http_request_duration_seconds{endpoint}     histogram
//	oauthd_tokens_issued_total{grant}
//	oauthd_login_failures_total
//	oauthd_rate_limited_total{limit}                   login_account, login_ip, client, kdf_queue, pending_requests
//	oauthd_store_errors_total{op}                      op is the store method
//	oauthd_store_writes_refused                        1 while /readyz reports refused writes
//	oauthd_gc_deleted_total
//	oauthd_gc_runs_total
//	oauthd_gc_failures_total
//	oauthd_tls_certificate_not_after_seconds           when serving TLS itself
//	oauthd_tls_handshake_errors_total                  when serving TLS itself
//
// plus the Go runtime and process collectors. endpoint is the route
// pattern ("/oauth/token", "/static/"), or "other" for unknown paths, so
// the number of series stays bounded whatever paths clients request.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	loginFailures prometheus.Counter
	rateLimited   *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
	gcDeleted     prometheus.Counter
	gcRuns        prometheus.Counter
	gcFailures    prometheus.Counter
	// storeWrites is whether the store's database refuses writes, as
	// the wrapper of instrument sees them (for /readyz).
	storeWrites *writeHealth
	// The TLS metrics, registered by registerTLS.
	tlsNotAfter        prometheus.Gauge
	tlsHandshakeErrors prometheus.Counter
	// cut, when set and true, says the server ended the requests still
	// running at shutdown_timeout: a 499 is then counted as 503 (see
	// cutLog).
	cut *atomic.Bool

	// The series of requests and durations already used, by their label
	// values: a map lookup per request rather than the client library's
	// hashing and checking of the label values.
	requestSeries  sync.Map // requestLabels → prometheus.Counter
	durationSeries sync.Map // endpoint → prometheus.Observer
	tokenSeries    map[string]prometheus.Counter
}

type requestLabels struct {
	endpoint, method string
	code             int
}

var _ oauthd.Observer = (*Metrics)(nil)

// NewMetrics returns the metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauthd_http_requests_total", Help: "HTTP requests by endpoint (route pattern), method and status code.",
		}, []string{"endpoint", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "oauthd_http_request_duration_seconds", Help: "Time to answer HTTP requests, by endpoint (route pattern).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauthd_tokens_issued_total", Help: "Successful token responses by grant type (implicit: access tokens from the authorization endpoint).",
		}, []string{"grant"}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauthd_login_failures_total", Help: "Wrong usernames or passwords, at the login form and the password grant.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauthd_rate_limited_total", Help: "Attempts refused by a rate limit: login_account, login_ip or client; password and secret checks refused by a full KDF queue: kdf_queue; authorization requests refused by the pending request budget: pending_requests.",
		}, []string{"limit"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauthd_store_errors_total", Help: "Store calls that failed (not found and already used/exists are not failures), by store method.",
		}, []string{"op"}),
		gcDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauthd_gc_deleted_total", Help: "Expired records deleted by the garbage collection.",
		}),
		gcRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauthd_gc_runs_total", Help: "Garbage collection runs.",
		}),
		gcFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauthd_gc_failures_total", Help: "Garbage collection runs that failed (the log has the first of a series, then a line every 10 minutes).",
		}),
		storeWrites: &writeHealth{now: time.Now},
		tlsNotAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oauthd_tls_certificate_not_after_seconds", Help: "The not_after of the TLS certificate being served, in Unix seconds.",
		}),
		tlsHandshakeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauthd_tls_handshake_errors_total", Help: "TLS handshakes that failed (scanners, clients that do not trust the certificate, plain HTTP on the TLS port).",
		}),
	}
	writesRefused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "oauthd_store_writes_refused", Help: "1 while the database refuses writes (full disk, read-only, I/O error) and /readyz answers 503, else 0.",
	}, func() float64 {
		if _, failing := m.storeWrites.failing(); failing {
			return 1
		}
		return 0
	})
	m.Registry.MustRegister(m.requests, m.duration, m.tokens, m.loginFailures, m.rateLimited, m.storeErrors, writesRefused,
		m.gcDeleted, m.gcRuns, m.gcFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Known label values start at zero, so dashboards see them before the
	// first event.
	m.tokenSeries = map[string]prometheus.Counter{}
	for _, g := range []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword, oauthd.GrantImplicit} {
		m.tokenSeries[g] = m.tokens.WithLabelValues(g)
	}
	for _, l := range []string{oauthd.LimitLoginAccount, oauthd.LimitLoginIP, oauthd.LimitClient, oauthd.LimitKDFQueue, oauthd.LimitPendingRequests} {
		m.rateLimited.WithLabelValues(l)
	}
	for _, t := range []reflect.Type{reflect.TypeFor[oauthd.Storage](), reflect.TypeFor[oauthd.CodeRedeemer](), reflect.TypeFor[oauthd.RefreshRotator](), reflect.TypeFor[oauthd.SigningKeyBootstrapper]()} {
		for i := range t.NumMethod() {
			m.storeErrors.WithLabelValues(t.Method(i).Name)
		}
	}
	return m
}

// registerTLS adds the metrics of a server that serves TLS itself; without
// TLS they are left out, rather than shown as a certificate that expired
// in 1970.
func (m *Metrics) registerTLS() {
	m.Registry.MustRegister(m.tlsNotAfter, m.tlsHandshakeErrors)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// TokenIssued implements oauthd.Observer.
func (m *Metrics) TokenIssued(grant string) {
	if c, ok := m.tokenSeries[grant]; ok {
		c.Inc()
		return
	}
	m.tokens.WithLabelValues(grant).Inc()
}

// LoginFailed implements oauthd.Observer.
func (m *Metrics) LoginFailed() { m.loginFailures.Inc() }

// Throttled implements oauthd.Observer.
func (m *Metrics) Throttled(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// RequestServed implements oauthd.Observer: it counts and times the
// requests the Provider answers. The label values are bounded (route
// patterns, HTTP methods, status codes), and so are the two maps of series.
func (m *Metrics) RequestServed(endpoint, meth string, code int, d time.Duration) {
	if code == oauthd.StatusClientClosedRequest && m.cut != nil && m.cut.Load() {
		code = http.StatusServiceUnavailable // the server ended it, at shutdown
	}
	verb := method(meth)
	o, ok := m.durationSeries.Load(endpoint)
	if !ok {
		o, _ = m.durationSeries.LoadOrStore(endpoint, m.duration.WithLabelValues(endpoint))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
	k := requestLabels{endpoint, verb, code}
	c, ok := m.requestSeries.Load(k)
	if !ok {
		c, _ = m.requestSeries.LoadOrStore(k, m.requests.WithLabelValues(endpoint, verb, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

// method bounds the method label to the methods HTTP defines.
func method(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE":
		return m
	}
	return "other"
}
