package load

import (
	"os"
	"syscall"
)

// ChildAttr is the SysProcAttr of the processes a load test starts (the
// server, the bare handler, wrk): they get SIGTERM when the process that
// started them dies, so a bench killed outright (SIGKILL, or SIGPIPE when
// its output is piped into head) leaves no server running behind it. The
// signal follows the death of the OS thread that started the child; the
// Go runtime does not end its threads while the program runs (none of
// oauthd's goroutines lock one to exit with it).
//
// They also run in a process group of their own, so that the SIGINT a
// terminal sends its foreground process group on Ctrl-C reaches the bench
// alone: the bench ends its run, then stops them itself, rather than a
// server stopping under a run still counting its refused connections.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// Continue sends SIGCONT to p, after the SIGTERM that stops it: a server
// stopped by SIGSTOP (frozen on purpose, or by a debugger) would
// otherwise hold the SIGTERM pending until the bench gave up on it.
func Continue(p *os.Process) { _ = p.Signal(syscall.SIGCONT) }
