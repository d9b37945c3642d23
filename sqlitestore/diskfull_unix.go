//go:build unix

package sqlitestore

import (
	"path/filepath"
	"syscall"
)

// diskFull reports whether the file system holding path has (almost) no
// space left for this user.
func diskFull(path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < 1<<20
}
