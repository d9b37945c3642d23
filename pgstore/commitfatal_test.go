package pgstore_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
)

// afterCommitProxy is a TCP proxy to PostgreSQL that, once armed, ends
// the connection of the next COMMIT after PostgreSQL committed: with lost
// false it lets the COMMIT's answer through, then sends the FATAL error of
// a terminated backend before the ready-for-query (what the client sees
// when pg_terminate_backend, or a failover, hits a backend right after it
// committed); with lost true it drops the answer and closes the connection
// (a network cut: the client cannot know whether it committed), and then
// refuses connections for outage (a database restarting); with silent
// true it drops the answer and keeps the connection open, saying nothing
// more (packets dropped). It returns the DSN through the proxy and the
// arming switch.
func afterCommitProxy(t *testing.T, dsn string, lost, silent bool, outage time.Duration) (string, *atomic.Bool) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skip("needs a URL DSN to route through a proxy")
	}
	if u.Query().Get("sslmode") != "disable" {
		t.Skip("needs sslmode=disable to read the protocol")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var armed atomic.Bool
	var downUntil atomic.Int64 // unix nanoseconds
	// From the server: messages of a type byte and a length; forwarded
	// one by one, so that the FATAL goes right after the COMMIT's.
	fromServer := func(client, server net.Conn) {
		defer client.Close()
		defer server.Close()
		head := make([]byte, 5)
		for {
			if _, err := io.ReadFull(server, head); err != nil {
				return
			}
			body := make([]byte, int(binary.BigEndian.Uint32(head[1:]))-4)
			if _, err := io.ReadFull(server, body); err != nil {
				return
			}
			commit := head[0] == 'C' && bytes.Equal(body, []byte("COMMIT\x00")) && armed.CompareAndSwap(true, false)
			if commit && silent {
				<-t.Context().Done()
				return
			}
			if commit && lost {
				downUntil.Store(time.Now().Add(outage).UnixNano())
				return
			}
			if _, err := client.Write(append(head, body...)); err != nil {
				return
			}
			if commit {
				var e bytes.Buffer
				for _, f := range []string{"SFATAL", "VFATAL", "C57P01", "Mterminating connection due to administrator command"} {
					e.WriteString(f)
					e.WriteByte(0)
				}
				e.WriteByte(0)
				msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(e.Len()+4))
				client.Write(append(msg, e.Bytes()...))
				return
			}
		}
	}
	target := u.Host
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if time.Now().UnixNano() < downUntil.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(up, c); up.Close() }()
			go fromServer(c, up)
		}
	}()
	u.Host = ln.Addr().String()
	return u.String(), &armed
}

// A code redemption and a refresh rotation that PostgreSQL committed are
// done, even when the connection then ends: answered as failed (503, "try
// again"), the client's retry was a replay that revoked its grant, as a
// chaos run with pg_terminate_backend under load showed. With the COMMIT's
// answer read, the FATAL error after it is not the outcome; with the
// answer lost, the outcome is read back from the database.
func TestCommittedThenConnectionLost(t *testing.T) {
	for _, tc := range []struct {
		name         string
		lost, silent bool
		outage       time.Duration
	}{
		{"backend terminated after the COMMIT's answer", false, false, 0},
		{"connection lost before the COMMIT's answer", true, false, 0},
		{"connection lost, then the database out of reach for a second", true, false, time.Second},
		{"connection silent from the COMMIT on, until the operation timeout", false, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, _ := pgtest.Schema(t)
			proxied, armed := afterCommitProxy(t, dsn, tc.lost, tc.silent, tc.outage)
			s := open(t, proxied, pgstore.Options{OperationTimeout: time.Second})
			ctx := t.Context()
			now := time.Now().Truncate(time.Millisecond)
			code := &oauthd.AuthCode{Hash: "code-1", GrantID: "g1", ClientID: "c1", Subject: "u1", RedirectURI: "https://app.example/cb",
				Scopes: []string{"openid"}, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
			if err := s.CreateAuthCode(ctx, code); err != nil {
				t.Fatal(err)
			}
			tok := func(hash, kind string) *oauthd.Token {
				return &oauthd.Token{Hash: hash, Kind: kind, GrantID: "g1", ClientID: "c1", Subject: "u1", Scopes: []string{"openid"},
					IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			armed.Store(true)
			if got, err := s.RedeemAuthCode(ctx, "code-1", now, func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
				return []*oauthd.Token{tok("at-1", oauthd.AccessToken), tok("rt-1", oauthd.RefreshToken)}, nil
			}); err != nil || got == nil || got.Hash != "code-1" {
				t.Errorf("RedeemAuthCode committed, then its connection ended: %+v, %v; want the code", got, err)
			}
			if armed.Load() {
				t.Fatal("the proxy saw no COMMIT")
			}
			if _, err := s.Token(ctx, "rt-1"); err != nil {
				t.Fatalf("the redemption's refresh token: %v; want it stored", err)
			}

			armed.Store(true)
			got, err := s.RotateRefreshTokenFunc(ctx, "rt-1", now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
				return []byte("sealed"), []*oauthd.Token{tok("at-2", oauthd.AccessToken), tok("rt-2", oauthd.RefreshToken)}, nil
			})
			if err != nil || got == nil || got.Hash != "rt-1" || got.RotatedAt.IsZero() {
				t.Errorf("RotateRefreshTokenFunc committed, then its connection ended: %+v, %v; want the token, rotated", got, err)
			}
			if _, err := s.Token(ctx, "rt-2"); err != nil {
				t.Errorf("the rotation's refresh token: %v; want it stored", err)
			}
		})
	}
}
