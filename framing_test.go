package oauthd_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// rawExchange sends req, raw bytes, on a new connection to e's server,
// then, if halfClose, closes the connection's sending side; it returns
// the first answer and whether the server closed the connection after it
// (nothing more to read within a second).
func rawExchange(t *testing.T, e *testEnv, req string, halfClose bool) (*http.Response, string, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.ReadByte()
	return res, string(body), err == io.EOF
}

// RFC 3986 §2.2: an encoded slash is not a slash. /oauth%2Ftoken is not
// the token endpoint (a proxy rule keeping /oauth/introspect private must
// not be passed by spelling it so), while an encoded unreserved letter is
// the letter itself (§6.2.2.2).
func TestEncodedSlashIsNotAPathSeparator(t *testing.T) {
	e := newEnv(t)
	cc := "grant_type=client_credentials"
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/oauth%2Ftoken", http.StatusNotFound},
		{"/oauth%2ftoken", http.StatusNotFound},
		{"/oauth%2Fintrospect", http.StatusNotFound},
		{"/oauth/%74oken", http.StatusOK},
		{oauthd.TokenPath, http.StatusOK},
	} {
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			tc.path, basic("service", "service-secret"), len(cc), cc)
		res, body, _ := rawExchange(t, e, req, false)
		if res.StatusCode != tc.status {
			t.Errorf("POST %s: %d %s; want %d", tc.path, res.StatusCode, body, tc.status)
		}
	}
}

// RFC 9112 §6.1: a request with Transfer-Encoding (which may have carried
// a Content-Length as well, dropped by net/http) is answered and the
// connection closed: what follows on it is not read as another request.
func TestChunkedRequestClosesTheConnection(t *testing.T) {
	e := newEnv(t)
	req := "POST " + oauthd.RevokePath + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + seedAuth +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
		"7\r\ntoken=x\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	res, body, closed := rawExchange(t, e, req, false)
	if res.StatusCode != http.StatusOK || !res.Close || !closed {
		t.Errorf("chunked revocation: %d %s, Connection: close %v, connection closed %v; want 200 and the connection closed", res.StatusCode, body, res.Close, closed)
	}
	// A request without Transfer-Encoding keeps its connection.
	req = "POST " + oauthd.RevokePath + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + seedAuth +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\ntoken=x"
	if res, _, closed := rawExchange(t, e, req, false); res.Close || closed {
		t.Errorf("plain revocation: Connection: close %v, closed %v; want the connection kept", res.Close, closed)
	}
}

// A client that half-closes its connection before sending the body it
// announced still reads an answer: 400 (RFC 9110 §15.5.1), not the 499
// the log and the metrics use for it.
func TestHalfClosedClientGetsAnHTTPStatus(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{oauthd.TokenPath, oauthd.RevokePath, oauthd.IntrospectPath} {
		req := "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + seedAuth +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=x"
		res, body, _ := rawExchange(t, e, req, true)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
			t.Errorf("POST %s, body cut short: %d %s; want 400 invalid_request", path, res.StatusCode, body)
		}
	}
}
