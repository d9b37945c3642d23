package oauthd

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// DefaultPendingRequestBudget is the default Config.PendingRequestBudget:
// 256 MiB of pending authorization requests per AuthRequestTTL.
const DefaultPendingRequestBudget = 256 << 20

// LimitPendingRequests is the name Observer.Throttled reports for an
// authorization request refused by the pending request budget (see
// Config.PendingRequestBudget).
const LimitPendingRequests = "pending_requests"

// pendingBudget bounds what requests from people not signed in yet can
// make the store keep: every authorization request that shows a page is
// stored, up to several kilobytes of it, until someone answers it or it
// expires (Config.AuthRequestTTL), and anyone can send them. The budget is
// the bytes of the requests stored and not answered yet, in a sliding
// window of that TTL, for this node (an answered request is credited back
// to the window it was made in and to the network that answers it, usually
// the one that sent it):
//
//   - past the budget, a request is refused (temporarily_unavailable, to
//     the client's redirect URI): the store grows by at most the budget
//     per TTL, however many addresses the requests come from;
//   - a network (an IPv4 address or an IPv6 /56) is refused past a 64th
//     of the budget of unanswered requests, and past a 256th while more
//     than half of the budget is spent: a flood from a few networks is
//     refused long before the budget, and people who sign in, even many
//     behind one company NAT address, answer their requests and count for
//     little;
//   - so are the larger networks around it, each level four times
//     the one below: an IPv4 /24 and /16, an IPv6 /48 and /32. Whoever
//     holds an IPv6 /48 (a site's usual assignment: 256 /56s) or many
//     addresses of an IPv4 /24 gets 4 networks' share, not 256 times it;
//     except that a network with less than pendingFloor pending may go
//     past them up to twice their share (a few busy addresses of a /16
//     would otherwise shut out the rest of it at once).
//
// The counts are this node's, in memory; a restart forgets them. The
// networks tracked are bounded (maxBudgetKeys): past the bound, a new
// network takes the place of one of the least counted, so a flood from
// very many addresses can only spend the budget, not shut out the
// networks it has not seen yet.
type pendingBudget struct {
	mu     sync.Mutex
	max    int64
	window time.Duration
	start  time.Time // of the current window
	pstart time.Time // of the previous one (zero if none)
	cur    int64
	prev   int64
	keys   map[string]int64 // this window's bytes per network
	prevK  map[string]int64
}

// maxBudgetKeys bounds the networks tracked in a window.
const maxBudgetKeys = 10000

func newPendingBudget(max int64, window time.Duration) *pendingBudget {
	if max <= 0 || window <= 0 {
		return nil
	}
	return &pendingBudget{max: max, window: window, keys: map[string]int64{}, prevK: map[string]int64{}}
}

// admit reports whether a request of size bytes from network key may be
// stored now, and counts it if so. A nil budget admits everything.
func (b *pendingBudget) admit(key string, size int64, now time.Time) bool {
	ok, _ := b.admitWhy(key, size, now)
	return ok
}

// admitWhy is admit, which also says what refused a request: "" for the
// whole budget, else the network whose share is spent.
func (b *pendingBudget) admitWhy(key string, size int64, now time.Time) (bool, string) {
	if b == nil {
		return true, ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	// The previous window counts for the part of it still inside the
	// sliding window.
	left := 1 - float64(now.Sub(b.start))/float64(b.window)
	used := b.cur + int64(float64(b.prev)*left)
	if used+size > b.max {
		return false, ""
	}
	limit := b.max / 64
	if used > b.max/2 {
		limit = b.max / 256
	}
	var levels [3]string
	keys := append(levels[:0], key)
	keys = append(keys, coarserNetworks(key)...)
	floor := false
	for i, k := range keys {
		mine := b.keys[k] + int64(float64(b.prevK[k])*left)
		share := limit << (2 * i)
		if i == 0 {
			// A network with little pending may go past the share of
			// the larger networks around it, up to twice it: a few
			// busy addresses of a /16 must not shut out everyone else
			// in it at once, and addresses that each keep under the
			// floor cannot take more than that either.
			floor = mine+size <= pendingFloor
		} else if floor {
			share *= 2
		}
		if mine+size > share {
			return false, k
		}
	}
	b.cur += size
	for _, k := range keys {
		if _, ok := b.keys[k]; !ok && len(b.keys) >= maxBudgetKeys {
			b.evict()
		}
		b.keys[k] += size
	}
	return true, ""
}

// pendingFloor is what a network may have pending whatever the larger
// networks around it have: a person's few sign-ins (about a dozen
// requests of the usual size).
const pendingFloor = 16 << 10

// evict forgets one of the least counted of a few networks of the window,
// to make room for a new one.
func (b *pendingBudget) evict() {
	victim, least, seen := "", int64(0), 0
	for k, n := range b.keys { // a map's order is random
		if seen == 0 || n < least {
			victim, least = k, n
		}
		if seen++; seen == 8 {
			break
		}
	}
	delete(b.keys, victim)
}

// coarserNetworks are the larger networks around a network key: an IPv4
// address's /24 and /16, an IPv6 /56's /48 and /32; none for other keys.
func coarserNetworks(key string) []string {
	if a, err := netip.ParseAddr(key); err == nil && a.Is4() {
		p24, _ := a.Prefix(24)
		p16, _ := a.Prefix(16)
		return []string{p24.String(), p16.String()}
	}
	if p, err := netip.ParsePrefix(key); err == nil && p.Addr().Is6() && p.Bits() == 56 {
		p48, _ := p.Addr().Prefix(48)
		p32, _ := p.Addr().Prefix(32)
		return []string{p48.String(), p32.String()}
	}
	return nil
}

// answered credits back a request of size bytes made at created, answered
// now by network key.
func (b *pendingBudget) answered(key string, size int64, created, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	credit := func(total *int64, keys map[string]int64) {
		*total = max(0, *total-size)
		for _, k := range append([]string{key}, coarserNetworks(key)...) {
			if n, ok := keys[k]; ok {
				if n -= size; n > 0 {
					keys[k] = n
				} else {
					delete(keys, k)
				}
			}
		}
	}
	switch {
	case !created.Before(b.start):
		credit(&b.cur, b.keys)
	case !b.pstart.IsZero() && !created.Before(b.pstart):
		credit(&b.prev, b.prevK)
	}
}

// roll starts a new window when the current one has ended.
func (b *pendingBudget) roll(now time.Time) {
	if b.start.IsZero() {
		b.start = now
		return
	}
	switch {
	case now.Sub(b.start) >= 2*b.window:
		b.prev, b.prevK, b.pstart = 0, map[string]int64{}, time.Time{}
	case now.Sub(b.start) >= b.window:
		b.prev, b.prevK, b.pstart = b.cur, b.keys, b.start
	default:
		return
	}
	b.cur, b.keys = 0, map[string]int64{}
	b.start = now
}

// networkKey is the network a client's pending requests and its password
// and secret checks count on: its IPv4 address, or its IPv6 /56 (a home
// or an office gets a /56 or a /48, so a /64 per source would give one
// subscriber 256 keys or more).
func networkKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	pfx, _ := a.Prefix(56)
	return pfx.String()
}

// pendingSize is about how many bytes a store keeps for ar: its strings and
// a fixed part for the rest of the record and its indexes.
func pendingSize(ar *AuthRequest) int64 {
	n := 256 + len(ar.ID) + len(ar.BrowserHash) + len(ar.ClientID) + len(ar.RedirectURI) + len(ar.ResponseType) +
		len(ar.ResponseMode) + len(ar.State) + len(ar.CodeChallenge) + len(ar.CodeChallengeMethod) + len(ar.Nonce) +
		len(ar.LoginHint) + len(ar.IDTokenHintSubject) + len(ar.Display) + len(ar.Claims)
	for _, l := range [][]string{ar.Scopes, ar.Prompt, ar.UILocales, ar.ACRValues} {
		for _, s := range l {
			n += len(s) + 3
		}
	}
	return int64(n)
}

// pendingAnswered credits the budget with ar, answered by r.
func (p *Provider) pendingAnswered(r *http.Request, ar *AuthRequest) {
	p.pendingBudget.answered(networkKey(ClientIP(r.Context())), pendingSize(ar), ar.CreatedAt, p.now())
}

// pendingRefused counts a request the budget refused, and logs the
// refusals, at most once a minute, with what refused (the whole budget,
// or the share of network).
func (p *Provider) pendingRefused(r *http.Request, network string) {
	p.throttled(LimitPendingRequests)
	now := p.now().UnixNano()
	last := p.pendingWarned.Load()
	if now-last < int64(time.Minute) || !p.pendingWarned.CompareAndSwap(last, now) {
		return
	}
	if network != "" {
		p.log.Warn("authorization requests refused: a network's share of the pending request budget is spent (Config.PendingRequestBudget, per auth_request_ttl); a flood of authorization requests from it",
			"request_id", RequestID(r.Context()), "ip", ClientIP(r.Context()), "network", network)
		return
	}
	p.log.Warn("authorization requests refused: the pending request budget is spent (Config.PendingRequestBudget, per auth_request_ttl); a flood of authorization requests, or a budget too small for this server's sign-ins",
		"request_id", RequestID(r.Context()), "ip", ClientIP(r.Context()))
}
