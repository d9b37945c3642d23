package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/sqlitestore"
)

// cmdBackup copies a SQLite database into a new file while servers use
// it (sqlitestore.Backup). PostgreSQL has pg_dump.
func cmdBackup(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("backup", e)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: oauthd backup [--db oauthd.db | --config FILE] NEW_FILE\n\n"+
			"Copies the SQLite database into NEW_FILE (which must not exist) while\n"+
			"servers keep using it: a consistent snapshot, with no WAL file to copy.\n"+
			"For PostgreSQL use pg_dump.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	db := dbFlag(fs, e)
	pos, err := parse(fs, args, 1, "one file to write the backup to")
	if err != nil {
		return err
	}
	if err := existingDB(*db); err != nil {
		return err
	}
	path, ok := sqlitePath(*db)
	if !ok {
		return errors.New("backup copies SQLite databases; for PostgreSQL use pg_dump (see the README's Backups)")
	}
	if err := sqlitestore.Backup(ctx, path, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "backed up %s into %s\n", app.MaskDSN(*db), pos[0])
	return nil
}
