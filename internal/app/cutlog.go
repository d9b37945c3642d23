package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/oauthd/oauthd"
)

// errShutdownCut is the cause of the requests' contexts when Shutdown ends
// the requests still running at shutdown_timeout.
var errShutdownCut = errors.New("oauthd: shutdown_timeout passed: the server ended the request")

// cutLog is the slog.Handler of the server's logger. The Provider logs a
// request whose context ended before its answer as 499, nginx's "client
// closed request"; but when Shutdown ended it (its context's cause is
// errShutdownCut), no client went away: the server cut it. Such a request
// line says status 503, and every record of such a request carries
// reason=shutdown. cut is false until Shutdown cuts, so that until then a
// record costs one atomic load more.
type cutLog struct {
	slog.Handler
	cut *atomic.Bool
}

func (h cutLog) Handle(ctx context.Context, r slog.Record) error {
	if h.cut.Load() && ctx != nil && errors.Is(context.Cause(ctx), errShutdownCut) {
		r = markCut(r)
	}
	return h.Handler.Handle(ctx, r)
}

// markCut is r with status 499 as 503 (the request line) and
// reason=shutdown.
func markCut(r slog.Record) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" && a.Value.Kind() == slog.KindInt64 && a.Value.Int64() == oauthd.StatusClientClosedRequest {
			a = slog.Int("status", http.StatusServiceUnavailable)
		}
		out.AddAttrs(a)
		return true
	})
	out.AddAttrs(slog.String("reason", "shutdown"))
	return out
}

func (h cutLog) WithAttrs(as []slog.Attr) slog.Handler {
	return cutLog{h.Handler.WithAttrs(as), h.cut}
}

func (h cutLog) WithGroup(name string) slog.Handler {
	return cutLog{h.Handler.WithGroup(name), h.cut}
}
