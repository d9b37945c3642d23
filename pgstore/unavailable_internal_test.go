package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oauthd/oauthd"
)

// The errors that say PostgreSQL cannot be reached or used for now wrap
// oauthd.ErrUnavailable (the Provider answers 503 with Retry-After); the
// others do not.
func TestFailMarksUnavailable(t *testing.T) {
	s := &Store{}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"connection lost mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"statement_timeout", &pgconn.PgError{Code: "57014"}, true},
		{"lock_timeout", &pgconn.PgError{Code: "55P03"}, true},
		{"admin_shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"cannot_connect_now", &pgconn.PgError{Code: "57P03"}, true},
		{"idle_session_timeout", &pgconn.PgError{Code: "57P05"}, true},
		{"idle_in_transaction_session_timeout", &pgconn.PgError{Code: "25P03"}, true},
		{"too_many_connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection_failure", &pgconn.PgError{Code: "08006"}, true},
		{"read_only_sql_transaction", &pgconn.PgError{Code: "25006"}, true},
		{"disk_full", &pgconn.PgError{Code: "53100"}, true},
		{"io_error", &pgconn.PgError{Code: "58030"}, true},
		{"connect: database does not exist", errors.Join(&pgconn.ConnectError{Config: &pgconn.Config{}}, &pgconn.PgError{Code: "3D000"}), true},
		{"connect: database not accepting connections", errors.Join(&pgconn.ConnectError{Config: &pgconn.Config{}}, &pgconn.PgError{Code: "55000"}), true},
		{"connect: password authentication failed", errors.Join(&pgconn.ConnectError{Config: &pgconn.Config{}}, &pgconn.PgError{Code: "28P01"}), false},
		{"unique_violation", &pgconn.PgError{Code: "23505"}, false},
		{"undefined_table", &pgconn.PgError{Code: "42P01"}, false},
		{"request cancelled", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		err := s.fail("read token", tc.err)
		if got := errors.Is(err, oauthd.ErrUnavailable); got != tc.want {
			t.Errorf("%s: fail(%v) = %v, unavailable %v; want %v", tc.name, tc.err, err, got, tc.want)
		}
	}
}

// A key=value DSN's password written with backslash escapes is removed
// from text both as written and as libpq and pgx read it.
func TestScrubEscapedPassword(t *testing.T) {
	dsn := `host=h user=u password=Sup3r\ Secret dbname=db`
	for _, text := range []string{`config: host=h password=Sup3r\ Secret`, `auth failed for "Sup3r Secret"`} {
		if got := scrub(text, dsn); strings.Contains(got, "Secret") || strings.Contains(got, "Sup3r") {
			t.Errorf("scrub(%q) = %q; want the password gone", text, got)
		}
	}
}

// WriteRefused names the SQLSTATEs of a database that takes no writes,
// through the store's wrapping, and no other.
func TestWriteRefusedCodes(t *testing.T) {
	s := &Store{}
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{&pgconn.PgError{Code: "53100"}, "disk full"},
		{&pgconn.PgError{Code: "25006"}, "read-only"},
		{&pgconn.PgError{Code: "58030"}, "I/O error"},
		{&pgconn.PgError{Code: "53300"}, ""},
		{&pgconn.PgError{Code: "23505"}, ""},
		{&pgconn.PgError{Code: "40001"}, ""},
		{errors.New("boom"), ""},
		{nil, ""},
	} {
		err := tc.err
		if err != nil {
			err = s.fail("create client", err)
		}
		if reason, ok := WriteRefused(err); reason != tc.reason || ok != (tc.reason != "") {
			t.Errorf("WriteRefused(%v) = %q, %v; want %q", err, reason, ok, tc.reason)
		}
	}
}

// deadConn names the errors of a connection the server has closed, after
// which a read runs again on another connection: a terminated backend, a
// crash, and the server's idle timeouts; not a statement's own failure.
func TestDeadConnCodes(t *testing.T) {
	for code, want := range map[string]bool{
		"57P01": true, "57P02": true, "57P05": true, "25P03": true, "08006": true,
		"57014": false, "55P03": false, "23505": false, "40001": false,
	} {
		if got := deadConn(&pgconn.PgError{Code: code}); got != want {
			t.Errorf("deadConn(SQLSTATE %s) = %v; want %v", code, got, want)
		}
	}
}
