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
// there or to already exists. The copy is written under a temporary name
// beside to (to.partial-*), synced, and only then given the name to: a
// backup that failed or was killed halfway never leaves a file under the
// backup's name (an empty one would open as a valid, empty database).
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
	// database is (os.CreateTemp's 0600). VACUUM INTO fills an empty file.
	f, err := os.CreateTemp(filepath.Dir(to), filepath.Base(to)+".partial-*")
	if err != nil {
		// The temporary file's name says nothing to the operator: the
		// directory of the copy is what is missing or not writable.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("sqlitestore: backup into %s: cannot create a file in %s: %w", to, filepath.Dir(to), err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // gone once linked, or after a failure
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("sqlitestore: backup of %s into %s: %w", path, to, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	// A hard link gives the copy its name only if the name is still free
	// (a rename would replace a file made there meanwhile). A file system
	// without hard links (vfat, exFAT, many network mounts) gets a rename
	// after a last look at the name.
	if err := linkFile(tmp, to); errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sqlitestore: backup: %s already exists", to)
	} else if err != nil {
		if _, serr := os.Lstat(to); serr == nil {
			return fmt.Errorf("sqlitestore: backup: %s already exists", to)
		}
		if rerr := os.Rename(tmp, to); rerr != nil {
			return fmt.Errorf("sqlitestore: backup: %w", errors.Join(err, rerr))
		}
	}
	if err := syncFile(filepath.Dir(to)); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	return nil
}

// syncFile flushes a file, or a directory's entries, to the disk.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// linkFile is os.Link; tests replace it to act as a file system without
// hard links.
var linkFile = os.Link
