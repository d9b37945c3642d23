package oauthd

import (
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

	// Below half the budget no network is limited: one NAT may sign in
	// far more than a 64th of the budget.
	for i := range 30 {
		if !b.admit("203.0.113.7", 1000, t0) {
			t.Fatalf("request %d of one network below half the budget refused", i)
		}
	}
	// Past half, a network over a 64th of the budget is refused, others not.
	if !b.admit("198.51.100.1", 3000, t0) {
		t.Fatal("another network refused")
	}
	if b.admit("203.0.113.7", 1000, t0) {
		t.Error("the heavy network admitted past half the budget")
	}
	if !b.admit("192.0.2.9", 900, t0) {
		t.Error("a light network refused past half the budget")
	}
	// The budget itself holds for everyone.
	for i := 0; b.admit("net-"+strconv.Itoa(i), 100, t0); i++ {
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
	if b.admit("192.0.2.200", 100, t1) {
		t.Error("admitted while the previous window's requests fill the sliding window")
	}
	if !b.admit("192.0.2.200", max/4, t1.Add(15*time.Minute)) || b.admit("192.0.2.201", max/2, t1.Add(15*time.Minute)) {
		t.Error("half a window later, want room for a quarter of the budget and not for half")
	}
	// Two windows later, nothing counts.
	if !b.admit("203.0.113.7", 1000, t1.Add(61*time.Minute)) {
		t.Error("refused two windows later")
	}
	// No budget admits everything.
	var none *pendingBudget
	if !none.admit("x", 1<<40, t0) || newPendingBudget(-1, time.Minute) != nil {
		t.Error("a nil budget refused")
	}
}

// TestPendingBudgetKeysBounded: the networks tracked are bounded; those
// past the bound share one count.
func TestPendingBudgetKeysBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newPendingBudget(1<<40, time.Minute)
	for i := range maxBudgetKeys + 500 {
		b.admit("k"+strings.Repeat("0", i%3)+time.Duration(i).String(), 1, t0)
	}
	if len(b.keys) > maxBudgetKeys+1 {
		t.Errorf("%d networks tracked; want at most %d and the shared one", len(b.keys), maxBudgetKeys)
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
}
