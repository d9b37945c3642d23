//go:build unix

package app

import "syscall"

// The modes of access(2), the same on every Unix.
const (
	accessX = 0x1
	accessW = 0x2
	accessR = 0x4
)

// dirWritable reports whether this process's user may create files in the
// directory dir (root may, whatever its permissions), as SQLite creates
// the -wal and -shm files beside a database.
func dirWritable(dir string) error { return syscall.Access(dir, accessW|accessX) }

// fileWritable reports whether this process's user may read and write the
// file path.
func fileWritable(path string) error { return syscall.Access(path, accessR|accessW) }
