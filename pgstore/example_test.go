package pgstore_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/ui"
)

// Open a store shared by every node of a cluster and serve the
// authorization server on it. The DSN may carry pool settings; Options
// override them.
func ExampleOpen() {
	ctx := context.Background()
	store, err := pgstore.Open(ctx, "postgres://oauthd@db.example.com:5432/oauthd?sslmode=verify-full&pool_max_conns=20",
		pgstore.Options{MaxConnLifetime: 30 * time.Minute})
	if err != nil {
		log.Fatal(err) // names the server and database, never the password
	}
	defer store.Close()
	pages, err := ui.New(ui.Options{})
	if err != nil {
		log.Fatal(err)
	}
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: pages}, store)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(":8000", p))
}

// Migrate deliberately, once per release, and open the servers with
// NoMigrate.
func ExampleStore_Migrate() {
	ctx := context.Background()
	dsn := "postgres://oauthd_admin@db.example.com/oauthd"
	store, err := pgstore.Open(ctx, dsn, pgstore.Options{NoMigrate: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("schema version %d", v)
}
