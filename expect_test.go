package oauthd_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// A client that announces a body over the limit and waits for 100 Continue
// before sending it (RFC 9110 §10.1.1; curl does for bodies over 1 MB) gets
// the 413 straight away, not 100 Continue and then a connection reset in
// the middle of its upload; and the connection is closed at once, whatever
// the size announced: the client, waiting for a 100 Continue that never
// comes, does not hold it until the server's read timeout (net/http would
// try to read up to 256 KiB of the body first).
func TestOversizedBodyWithExpectContinueGets413(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{oauthd.TokenPath, oauthd.IntrospectPath, oauthd.RevokePath} {
		for _, n := range []int{70_000, 200_000, 2 << 20} {
			t.Run(fmt.Sprintf("%s/%d", strings.TrimPrefix(path, "/"), n), func(t *testing.T) {
				req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
					"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
					path, basic(clientID, clientSecret), n)
				start := time.Now()
				res, _, closed := rawExchange(t, e, req, false)
				if res.StatusCode != http.StatusRequestEntityTooLarge {
					t.Errorf("status %d; want 413 before any of the body is sent", res.StatusCode)
				}
				if !res.Close || !closed || time.Since(start) > 3*time.Second {
					t.Errorf("Connection: close %v, closed %v after %v; want the connection closed at once after the 413 (the body was never read)", res.Close, closed, time.Since(start))
				}
			})
		}
	}
}
