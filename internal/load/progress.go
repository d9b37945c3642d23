package load

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Progress shows how a run goes, on a terminal or in a log.
//
// On a terminal (Width set) the line is rewritten in place every second,
// cut to the terminal's width so that it never wraps, and ended with a
// newline once the run is over. Anywhere else (a file, a pipe) a line
// carriage returns would garble is written, newline-terminated, every
// Interval, and once at the end of each run.
type Progress struct {
	W io.Writer
	// Width, when set, says W is a terminal and returns its width in
	// columns (0 when it cannot tell).
	Width func() int
	// Interval is how often a line is written when W is not a terminal;
	// default 5 s.
	Interval time.Duration

	mu   sync.Mutex
	last time.Time // when a line was last written (not on a terminal)
	open bool      // a rewritten line is on the terminal, without its newline
}

func (p *Progress) width() int {
	w := p.Width()
	if w <= 0 {
		w = 80
	}
	return w
}

// fit cuts s to n columns (runes: the line is ASCII but for µ).
func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n, 0)])
}

// fitted is line cut or padded to the terminal's width less one column
// (a character in the last column makes some terminals wrap), so that it
// covers the line it rewrites.
func (p *Progress) fitted(line string) string {
	w := p.width() - 1
	s := fit(line, w)
	return s + strings.Repeat(" ", max(0, w-utf8.RuneCountInString(s)))
}

// Update shows line, the state of a run in progress.
func (p *Progress) Update(line string) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line = strings.TrimSpace(line)
	if p.Width != nil {
		fmt.Fprintf(p.W, "\r%s", p.fitted(line))
		p.open = true
		return
	}
	interval := p.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if now := time.Now(); p.last.IsZero() || now.Sub(p.last) >= interval {
		if !p.last.IsZero() {
			fmt.Fprintln(p.W, line)
		}
		p.last = now
	}
}

// Start marks the start of a run: the first line in a log comes an
// Interval later.
func (p *Progress) Start() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
}

// Final shows line, the state of a run that is over, once, and ends it
// with a newline.
func (p *Progress) Final(line string) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line = strings.TrimSpace(line)
	if p.Width != nil {
		fmt.Fprintf(p.W, "\r%s\n", p.fitted(line))
	} else {
		fmt.Fprintln(p.W, line)
	}
	p.open = false
	p.last = time.Now()
}

// Break ends a line left open on the terminal, so that what is written
// next starts on a line of its own.
func (p *Progress) Break() {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.W)
		p.open = false
	}
}
