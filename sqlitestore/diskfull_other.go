//go:build !unix

package sqlitestore

// diskFull reports whether the file system holding path has (almost) no
// space left; where that is not known, it says no.
func diskFull(path string) bool { return false }
