package app

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A body slower than the read timeout is answered 408 Request Timeout, as
// the README says, and the client receives that answer: with a write
// timeout equal to the read timeout, the connection was closed without
// one.
func TestSlowBodyGets408(t *testing.T) {
	prevR, prevW := readTimeout, writeTimeout
	if prevW <= prevR {
		t.Fatalf("write timeout %s, read timeout %s: the 408 of a body that took the read timeout would not be sent", prevW, prevR)
	}
	readTimeout, writeTimeout = 300*time.Millisecond, 300*time.Millisecond+time.Second
	t.Cleanup(func() { readTimeout, writeTimeout = prevR, prevW })
	m, err := open(t.Context(), Config{Addr: "127.0.0.1:0", LogFormat: "json"}, newFakeStore(), &logBuf{})
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve()
	t.Cleanup(func() { m.Shutdown(t.Context()) })
	c, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 29 of the 100 bytes announced, then nothing.
	if _, err := c.Write([]byte("POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=client_credentials")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to the slow body: %v; want 408", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d; want 408", res.StatusCode)
	}
	if cl := res.Header.Get("Connection"); !strings.EqualFold(cl, "close") && !res.Close {
		t.Errorf("Connection %q; want the connection closed after the 408", cl)
	}
}
