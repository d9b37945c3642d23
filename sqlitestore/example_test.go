package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "oauthd-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	// Open creates the file and migrates it.
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "oauthd.db"), sqlitestore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	err = store.CreateUser(ctx, &oauthd.User{ID: "1", Username: "admin", PasswordHash: "..."})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := store.UserByUsername(ctx, "admin")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.ID, v > 0)
	// Output: 1 true
}
