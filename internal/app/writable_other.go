//go:build !unix

package app

// dirWritable is not checked here: without access(2), serve's own error
// says it when SQLite cannot create its files.
func dirWritable(dir string) error { return nil }

// fileWritable is not checked here either.
func fileWritable(path string) error { return nil }
