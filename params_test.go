package oauthd

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Concurrent requests each get their own parameters: form bodies are read
// into pooled buffers, and no request may see (or keep) bytes of another
// request's body, which would hand one client's code or token to another.
func TestParseFormConcurrentBodiesStayApart(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				want := fmt.Sprintf("%02d-%04d-%s", g, i, strings.Repeat("x", (g*i)%700))
				r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader("grant_type=authorization_code&code="+want))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				ps, e := parseForm(httptest.NewRecorder(), r, DefaultMaxBodyBytes)
				if e != nil {
					t.Error(e)
					return
				}
				// Read after other goroutines have reused the buffers.
				for range 3 {
					if got, _ := ps.get("code"); got != want {
						t.Errorf("code = %q; want %q", got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
