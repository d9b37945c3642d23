package oauthd

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxies configured: the header is ignored", "192.0.2.1:5000", []string{"198.51.100.7"}, nil, "192.0.2.1"},
		{"untrusted peer: the header is ignored", "192.0.2.1:5000", []string{"198.51.100.7"}, proxies, "192.0.2.1"},
		{"trusted peer: the forwarded address", "10.1.2.3:5000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"a forged left part is skipped", "10.1.2.3:5000", []string{"203.0.113.66, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"chained trusted proxies", "10.1.2.3:5000", []string{"198.51.100.7, 10.9.9.9", "10.8.8.8"}, proxies, "198.51.100.7"},
		{"only trusted hops: the leftmost", "10.1.2.3:5000", []string{"10.4.4.4, 10.5.5.5"}, proxies, "10.4.4.4"},
		{"malformed entry: the last trusted hop", "10.1.2.3:5000", []string{"198.51.100.7, bogus, 10.5.5.5"}, proxies, "10.5.5.5"},
		{"no header from a trusted peer", "10.1.2.3:5000", nil, proxies, "10.1.2.3"},
		{"IPv6 peer", "[::1]:5000", []string{"2001:db8::1"}, proxies, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"untrusted IPv4-mapped peer: the IPv4 form", "[::ffff:192.0.2.1]:5000", nil, proxies, "192.0.2.1"},
		{"untrusted IPv6 peer: the canonical form", "[2001:0db8:0::0002]:5000", nil, proxies, "2001:db8::2"},
		{"untrusted IPv4-mapped peer without brackets", "0::ffff:192.0.2.1", nil, proxies, "192.0.2.1"},
		{"untrusted IPv4 peer without a port", "192.0.2.1", nil, proxies, "192.0.2.1"},
		{"entry with a port", "10.1.2.3:5000", []string{"198.51.100.7:4711"}, proxies, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tt.trusted); got != tt.want {
				t.Errorf("clientIP = %s; want %s", got, tt.want)
			}
		})
	}
}

// clientIP never panics and answers the peer, a forwarded address, or the
// raw RemoteAddr when it is not an address.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:5000", "198.51.100.7, 10.9.9.9")
	f.Add("[::1]:1", "2001:db8::1,,bogus")
	f.Add("pipe", "")
	f.Add("0::ffff:192.0.2.1", "")
	f.Add("192.0.2.1:80", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := clientIP(r, trusted)
		a, err := netip.ParseAddr(got)
		if err != nil && got != remote {
			t.Errorf("clientIP(%q, %q) = %q: neither an address nor the RemoteAddr", remote, xff, got)
		}
		if err == nil && a.String() != got {
			t.Errorf("clientIP(%q, %q) = %q; want the canonical form %q", remote, xff, got, a)
		}
	})
}

// The per-IP limit counts IPv6 clients per /64.
func TestIPNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"pipe":                 "pipe",
		"::1":                  "::/64",
	} {
		if got := ipNetwork(in); got != want {
			t.Errorf("ipNetwork(%q) = %q; want %q", in, got, want)
		}
	}
}
