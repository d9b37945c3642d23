// Package migrate loads the embedded, versioned schema migrations the SQL
// stores run: files named NNNN_what.sql whose versions run 1, 2, 3...
// without gaps. Each store applies them with its own driver.
package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the migrations matching pattern (e.g. "migrations/*.sql")
// from fsys, in version order. Errors name the store (prefix) and file.
func Load(fsys fs.FS, pattern, prefix string) ([]Migration, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("%s: migration %s: name must start with a version number and '_'", prefix, base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s: migration %s: version %d, want %d", prefix, m.Name, m.Version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New(prefix + ": no migrations")
	}
	return ms, nil
}

// MustLoad is Load for embedded migrations, which are known at build time:
// it panics on an error, and also returns the latest version.
func MustLoad(fsys fs.FS, pattern, prefix string) ([]Migration, int) {
	ms, err := Load(fsys, pattern, prefix)
	if err != nil {
		panic(err)
	}
	return ms, ms[len(ms)-1].Version
}
