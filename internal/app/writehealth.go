package app

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

// writeFailureWindow is how long a write the database refused (a full
// disk, a read-only database, an I/O error) keeps /readyz at 503 unless a
// write succeeds meanwhile. The garbage collection tries again within
// gcRetryDelay after a failed run, a shorter time, so a node whose
// database stays full stays out of the load balancer even when no request
// reaches it.
const writeFailureWindow = 30 * time.Second

// writeRefused reports whether err says the store's database takes no
// writes for a reason that outlasts the request, and names it (see
// sqlitestore.WriteRefused and pgstore.WriteRefused).
func writeRefused(err error) (reason string, ok bool) {
	if err == nil {
		return "", false
	}
	if reason, ok := sqlitestore.WriteRefused(err); ok {
		return reason, true
	}
	return pgstore.WriteRefused(err)
}

// writeHealth remembers whether the store's writes are failing because
// its database takes none: a full disk, a read-only database, an I/O
// error. A server in that state answers every sign-in and authorization
// with 503 while its store still answers pings; /readyz reports it so
// that load balancers take the node out. It is set by a refused write and
// cleared by a write that changed something, or writeFailureWindow after
// the last refusal.
type writeHealth struct {
	now func() time.Time
	log *slog.Logger // for the changes of state; nil logs nothing

	// set says failedAt is not zero: a successful write, on every
	// request, then finds nothing to clear without taking mu.
	set      atomic.Bool
	mu       sync.Mutex
	failedAt time.Time // of the last refused write; zero after a write succeeded
	reason   string
}

// refused records a write that failed with err, if the database refused
// it; it reports whether it did.
func (h *writeHealth) refused(err error) bool {
	reason, ok := writeRefused(err)
	if !ok {
		return false
	}
	now := h.now()
	h.mu.Lock()
	fresh := h.failedAt.IsZero() || now.Sub(h.failedAt) > writeFailureWindow
	h.failedAt, h.reason = now, reason
	h.set.Store(true)
	h.mu.Unlock()
	if fresh && h.log != nil {
		h.log.Warn("the database refuses writes: /readyz answers 503 until a write succeeds", "reason", reason, "error", err.Error())
	}
	return true
}

// succeeded records a write that changed the database.
func (h *writeHealth) succeeded() {
	if !h.set.Load() {
		return
	}
	h.mu.Lock()
	was := h.set.Swap(false)
	h.failedAt = time.Time{}
	h.mu.Unlock()
	if was && h.log != nil {
		h.log.Info("the database takes writes again")
	}
}

// failing returns why writes are failing, if a write was refused within
// writeFailureWindow and none has succeeded since.
func (h *writeHealth) failing() (reason string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failedAt.IsZero() || h.now().Sub(h.failedAt) > writeFailureWindow {
		return "", false
	}
	return h.reason, true
}
