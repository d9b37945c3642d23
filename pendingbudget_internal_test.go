package oauthd

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPendingBudgetAdmit: the budget's rules, one window and the next.
func TestPendingBudgetAdmit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = 64 * 1000
	b := newPendingBudget(max, 30*time.Minute)

	// One network: a 64th of the budget of unanswered requests.
	if !b.admit("203.0.113.7", 1000, t0) || b.admit("203.0.113.7", 1, t0) {
		t.Fatal("want 1000 bytes of one network admitted, and no more")
	}
	// An answered request is credited back to its network.
	b.answered("203.0.113.7", 1000, t0, t0)
	if !b.admit("203.0.113.7", 1000, t0) {
		t.Fatal("refused after its requests were answered")
	}
	// Past half the budget, a network gets a 256th.
	for i := range 32 {
		if !b.admit("net-"+strconv.Itoa(i), 1000, t0) {
			t.Fatalf("network %d refused below half the budget", i)
		}
	}
	if b.admit("192.0.2.9", 300, t0) || !b.admit("192.0.2.9", 250, t0) {
		t.Error("past half the budget, want a network's 250 bytes admitted and not 300")
	}
	// The budget itself holds for everyone.
	for i := 0; b.admit("more-"+strconv.Itoa(i), 250, t0); i++ {
		if i > max {
			t.Fatal("the budget never ran out")
		}
	}
	if b.admit("192.0.2.200", 100, t0) {
		t.Error("a request admitted past the budget")
	}
	// A new window starts; the previous one counts for the part of it
	// still inside the sliding window: all of it at first, half of it
	// half a window later.
	t1 := t0.Add(45 * time.Minute)
	if b.admit("192.0.2.201", 100, t1) {
		t.Error("admitted while the previous window's requests fill the sliding window")
	}
	// Requests of the previous window answered now are credited to it.
	b.answered("net-0", 1000, t0, t1)
	b.answered("net-1", 1000, t0, t1)
	if !b.admit("192.0.2.201", 100, t1) {
		t.Error("refused after requests of the previous window were answered")
	}
	if !b.admit("192.0.2.202", 250, t1.Add(15*time.Minute)) {
		t.Error("half a window later, want room again")
	}
	// Two windows later, nothing counts.
	if !b.admit("203.0.113.7", 1000, t1.Add(61*time.Minute)) {
		t.Error("refused two windows later")
	}
	// No budget admits everything.
	var none *pendingBudget
	none.answered("x", 1, t0, t0)
	if !none.admit("x", 1<<40, t0) || newPendingBudget(-1, time.Minute) != nil {
		t.Error("a nil budget refused")
	}
}

// TestPendingBudgetKeysBounded: the networks tracked are bounded, and a
// network not seen yet still gets its own share once the bound is reached
// (it used to share one count with every other new network: a flood from
// 10,000 addresses shut out everyone else).
func TestPendingBudgetKeysBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newPendingBudget(1<<40, time.Minute)
	for i := range maxBudgetKeys + 500 {
		b.admit("k"+strings.Repeat("0", i%3)+time.Duration(i).String(), 1, t0)
	}
	if len(b.keys) > maxBudgetKeys {
		t.Errorf("%d networks tracked; want at most %d", len(b.keys), maxBudgetKeys)
	}
	for i := range 3 {
		if !b.admit("new-"+strconv.Itoa(i), (1<<40)/64-1, t0) {
			t.Errorf("new network %d refused its share once the bound was reached", i)
		}
	}
}

// TestPendingBudgetFloorBounded: requests of the usual size, a dozen from
// each of many addresses of one /16 or many /56s of one /32, each network
// under the floor, take at most twice the larger network's share, not the
// whole budget.
func TestPendingBudgetFloorBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = DefaultPendingRequestBudget
	for _, tc := range []struct {
		name string
		key  func(i int) string
	}{
		{"IPv4 addresses of one /16", func(i int) string { return fmt.Sprintf("10.9.%d.%d", i/256%256, i%256) }},
		{"IPv6 /56s of one /32", func(i int) string { return networkKey(fmt.Sprintf("2001:db8:%x:%x00::1", i/256%65536, i%256)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPendingBudget(max, 30*time.Minute)
			var got int64
			for i := range 65536 {
				for range 12 {
					if b.admit(tc.key(i), 1300, t0) {
						got += 1300
					}
				}
			}
			if share := int64(max / 64 * 16); got > 2*share {
				t.Errorf("admitted %d bytes; want at most twice the /16's or /32's share, %d", got, 2*share)
			}
			if !b.admit("192.0.2.1", 1300, t0) {
				t.Error("a network elsewhere was refused")
			}
		})
	}
}

// TestPendingBudgetLargerNetworks: an IPv6 /48 (256 /56s) or an IPv4 /24
// gets four networks' share of unanswered requests, not one for each of
// its networks; a /32 or a /16 sixteen.
func TestPendingBudgetLargerNetworks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = 64 * 1000 * 1000 // a network's share: 1,000,000 bytes
	for _, tc := range []struct {
		name      string
		key       func(i int) string
		want      int64
		neighbour string // in the full network, with nothing pending
	}{
		{"IPv6 /56s of one /48", func(i int) string { return networkKey(fmt.Sprintf("2001:db8:1:%x::1", i<<8)) }, 4_000_000, networkKey("2001:db8:1:ffff::1")},
		{"IPv6 /48s of one /32", func(i int) string { return networkKey(fmt.Sprintf("2001:db8:%x::1", i)) }, 16_000_000, networkKey("2001:db8:ffff::1")},
		{"IPv4 addresses of one /24", func(i int) string { return fmt.Sprintf("198.51.100.%d", i%256) }, 4_000_000, "198.51.100.255"},
		{"IPv4 /24s of one /16", func(i int) string { return fmt.Sprintf("198.51.%d.1", i%256) }, 16_000_000, "198.51.255.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPendingBudget(max, 30*time.Minute)
			var got int64
			for i := range 256 {
				for b.admit(tc.key(i), 100_000, t0) {
					got += 100_000
				}
			}
			if got != tc.want {
				t.Errorf("admitted %d bytes; want %d", got, tc.want)
			}
			// A neighbour with nothing pending still gets a person's few
			// requests (pendingFloor): a few busy addresses of a network
			// do not shut out the rest of it.
			for range 3 {
				if !b.admit(tc.neighbour, 2000, t0) {
					t.Error("a neighbour with nothing pending was refused")
				}
			}
			if b.admit(tc.neighbour, pendingFloor, t0) {
				t.Error("a neighbour past the floor was admitted into the full network")
			}
			// Another network of the same size elsewhere is not affected.
			if !b.admit("203.0.113.1", 100_000, t0) || !b.admit(networkKey("2001:db9::1"), 100_000, t0) {
				t.Error("a network elsewhere was refused")
			}
		})
	}
}

// TestNetworkKey: an IPv6 client counts per /56, an IPv4 one per address.
func TestNetworkKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2300::1", "2001:db8:1:2300::/56"},
		{"2001:db8:1:23ff:ffff::1", "2001:db8:1:2300::/56"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"", ""},
	} {
		if got := networkKey(tc.ip); got != tc.want {
			t.Errorf("networkKey(%q) = %q; want %q", tc.ip, got, tc.want)
		}
	}
}

// TestLogMethod: the methods of HTTP are logged as they are; any other
// token, which a client may send as the method (a token pasted there), is
// logged as its length.
func TestLogMethod(t *testing.T) {
	for m, want := range map[string]string{
		"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "PROPFIND": "[8 chars]",
		"18ec3210ef82df2d.ryNoOzjU1Zugw": "[30 chars]", "get": "[3 chars]",
	} {
		if got := logMethod(m); got != want {
			t.Errorf("logMethod(%q) = %q; want %q", m, got, want)
		}
	}
}

// TestLogPath: a long path is cut at a character boundary and says its
// length; a short one is kept.
func TestLogPath(t *testing.T) {
	if got := logPath("/oauth/token"); got != "/oauth/token" {
		t.Errorf("logPath kept %q", got)
	}
	long := "/" + strings.Repeat("é", 200)
	got := logPath(long)
	if !strings.HasSuffix(got, "...(401 bytes)") || len(got) > maxLoggedPath+20 || !strings.HasPrefix(long, strings.TrimSuffix(got, "...(401 bytes)")) {
		t.Errorf("logPath(long) = %q", got)
	}
	// A token pasted into a path stays out of the log; the words of
	// routes, known or not, stay in it.
	tok := NewCredential()
	for path, want := range map[string]string{
		"/oauth/userinfo/" + tok:                                    "/oauth/userinfo/[" + strconv.Itoa(len(tok)) + " chars]",
		"/x/" + RandomToken() + "/y":                                "/x/[43 chars]/y",
		"/oauth/userinfo/eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln": "/oauth/userinfo/[41 chars]",
		"/.well-known/oauth-authorization-server/extra":             "/.well-known/oauth-authorization-server/extra",
		"/oauth/userinfo/Bearer " + tok:                             "/oauth/userinfo/[" + strconv.Itoa(len("Bearer "+tok)) + " chars]",
		"/oauth/userinfo/token:" + tok:                              "/oauth/userinfo/[" + strconv.Itoa(len("token:"+tok)) + " chars]",
		"/oauth/userinfo/\"" + tok + "\"":                           "/oauth/userinfo/[" + strconv.Itoa(len(tok)+2) + " chars]",
		"/static/oauthd.css":                                        "/static/oauthd.css",
		"/auth/oauth/token":                                         "/auth/oauth/token",
	} {
		if got := logPath(path); got != want {
			t.Errorf("logPath(%q) = %q; want %q", path, got, want)
		}
	}
}
