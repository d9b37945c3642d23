package oauthd_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// A client that announces a body over the limit and waits for 100 Continue
// before sending it (RFC 9110 §10.1.1; curl does for bodies over 1 MB) gets
// the 413 straight away, not 100 Continue and then a connection reset in
// the middle of its upload.
func TestOversizedBodyWithExpectContinueGets413(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{oauthd.TokenPath, oauthd.IntrospectPath, oauthd.RevokePath} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
				path, basic(clientID, clientSecret), 2<<20)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d; want 413 before any of the body is sent", res.StatusCode)
			}
			if !res.Close {
				t.Error("the connection is kept open; want it closed after the 413 (the body was never read)")
			}
		})
	}
}
