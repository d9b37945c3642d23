//go:build !linux

package load

import (
	"os"
	"syscall"
)

// ChildAttr is the SysProcAttr of the processes a load test starts; outside
// Linux there is no parent-death signal, and a bench killed outright may
// leave them running.
func ChildAttr() *syscall.SysProcAttr { return nil }

// Continue does nothing outside Linux (see child_linux.go).
func Continue(p *os.Process) {}
