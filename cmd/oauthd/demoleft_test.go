package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// serve without --demo on a database --demo seeded warns that the demo's
// public credentials are still there, naming what to delete; a database
// without them gets no such warning.
func TestServeWarnsOfDemoLeftovers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	serve := func(args ...string) string { return serveUntilReady(t, db, args...) }
	if out := serve(); strings.Contains(out, "--demo seeded") {
		t.Errorf("serve on a database without the demo's records logged:\n%s", out)
	}
	if out := serve("--demo"); strings.Contains(out, "--demo seeded") {
		t.Errorf("serve --demo logged the leftover warning:\n%s", out)
	}
	out := serve()
	for _, want := range []string{"level=WARN", "--demo seeded", "oauthd client delete test_client", "oauthd client delete oidc_client", "oauthd user delete admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve without --demo on the demo's database logged:\n%s\nwant %q", out, want)
		}
	}
	if strings.Contains(out, "password") || strings.Contains(out, "oidc_secret") {
		t.Errorf("the warning shows a credential:\n%s", out)
	}
}
