package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path into the new
// file to, while servers go on using the database: SQLite's VACUUM INTO,
// which reads one snapshot (the WAL's committed transactions included) on
// a connection of its own and holds up no writer. The copy is a complete
// database, compacted, with no WAL file beside it: restoring is putting
// it in place of path while no server runs. It fails if path is not
// there or to already exists; a copy that failed halfway is removed.
func Backup(ctx context.Context, path, to string) error {
	if path == "" || to == "" {
		return errors.New("sqlitestore: backup: a database and a destination file are needed")
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("sqlitestore: backup: %s already exists", to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	db, err := sql.Open("sqlite", fileURI(abs)+fmt.Sprintf("?_busy_timeout=%d", busyTimeout))
	if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	defer db.Close()
	// The copy holds what the database holds (password and secret hashes,
	// signing keys): it is made readable by its owner only, as the
	// database is (see createPrivate). VACUUM INTO fills an empty file.
	if err := createPrivate(to); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, to); err != nil {
		os.Remove(to)
		return fmt.Errorf("sqlitestore: backup of %s into %s: %w", path, to, err)
	}
	return nil
}
