package app_test

// Helpers of TestNoSecretsInLogs (ops_test.go): a transport that records
// every answer, the forms a secret may take, and the check of the answers.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// leakExchange is one request and the answer it got, as the client saw them.
type leakExchange struct {
	method, path string
	status       int
	header       http.Header
	body         string
}

// leakRecorder is an http.RoundTripper that keeps every exchange.
type leakRecorder struct {
	mu  sync.Mutex
	all []leakExchange
}

func (rec *leakRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	rec.mu.Lock()
	rec.all = append(rec.all, leakExchange{req.Method, req.URL.Path, res.StatusCode, res.Header.Clone(), string(b)})
	rec.mu.Unlock()
	return res, nil
}

// basicAuth is an RFC 6749 §2.3.1 Basic header.
func basicAuth(id, sec string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
}

// secretForms are the ways a secret may appear in a log line or an
// answer: raw, URL-encoded (query and path) and JSON-escaped.
func secretForms(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		js, _ := json.Marshal(s)
		out = append(out, s, url.QueryEscape(s), url.PathEscape(s), strings.Trim(string(js), `"`))
	}
	return out
}

// checkAnswers looks for the secrets in every recorded answer: its body
// and headers, except what a successful answer is for (the code in the
// redirect to a client's redirect URI, the tokens of a 200 token answer,
// Set-Cookie).
func checkAnswers(t *testing.T, rec *leakRecorder, needles []string, redirects ...string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.all) < 40 {
		t.Errorf("only %d answers recorded: the flows did not run", len(rec.all))
	}
	for _, x := range rec.all {
		h := x.header.Clone()
		h.Del("Set-Cookie")
		for _, r := range redirects {
			if strings.HasPrefix(h.Get("Location"), r+"?") {
				h.Del("Location")
			}
		}
		text := ""
		if x.status >= 300 || x.path != "/oauth/token" {
			text = x.body
		}
		for k, vs := range h {
			text += "\n" + k + ": " + strings.Join(vs, ", ")
		}
		for _, s := range needles {
			if strings.Contains(text, s) {
				t.Errorf("the %d answer to %s %s holds the secret %q", x.status, x.method, x.path, s)
			}
		}
	}
}
