package sqlitestore_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/oauthd/oauthd/sqlitestore"
	"github.com/oauthd/oauthd/storetest"
)

func TestChurn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthd.db")
	s := open(t, path, sqlitestore.Options{})
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Churn(t, s, func() (map[string]int, error) {
		counts := map[string]int{}
		for _, table := range []string{"auth_requests", "auth_codes", "tokens", "sessions", "grant_revocations"} {
			var n int
			if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				return nil, err
			}
			counts[table] = n
		}
		return counts, nil
	})
}
