package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one HTTP/1.1 request. The wire form is built once and reused,
// so a fixed request costs the load generator nothing but the write.
type Request struct {
	Method string
	// Path is the request target: path and query.
	Path   string
	Header []Field
	Body   []byte

	enc atomic.Pointer[encoded] // the wire form, built on first use
}

type encoded struct {
	host string
	raw  []byte
}

// Field is one header field.
type Field struct{ Name, Value string }

// NewRequest returns a request with a form body (when form is not empty)
// and the header fields given as name, value pairs.
func NewRequest(method, path, form string, header ...string) *Request {
	r := &Request{Method: method, Path: path}
	if form != "" || method == "POST" {
		r.Body = []byte(form)
		r.Header = append(r.Header, Field{"Content-Type", "application/x-www-form-urlencoded"})
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header = append(r.Header, Field{header[i], header[i+1]})
	}
	return r
}

// encode returns the request's wire form for host.
func (r *Request) encode(host string) []byte {
	if e := r.enc.Load(); e != nil && e.host == host {
		return e.raw
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.Path, host)
	for _, f := range r.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
	}
	if r.Body != nil || r.Method == "POST" || r.Method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	r.enc.Store(&encoded{host, b.Bytes()})
	return b.Bytes()
}

// Response is the answer to a Request. Header and Body are only valid until
// the next request on the same connection.
type Response struct {
	Status int
	Header []HeaderField
	Body   []byte
}

// HeaderField is one response header field; Name is as the server sent it.
type HeaderField struct{ Name, Value []byte }

// Get returns the first value of the named header (case-insensitive), or "".
func (r *Response) Get(name string) string {
	for _, f := range r.Header {
		if bytes.EqualFold(f.Name, []byte(name)) {
			return string(f.Value)
		}
	}
	return ""
}

// errConnClosed means the server closed the connection before answering.
var errConnClosed = errors.New("connection closed by the server")

// conn is one keep-alive HTTP/1.1 connection, like one connection of wrk:
// requests go one at a time, responses are parsed with no allocation once
// the buffers have grown. It speaks only what oauthd and the baseline
// answer: Content-Length and chunked bodies, and Connection: close.
type conn struct {
	addr, host string
	timeout    time.Duration

	mu      sync.Mutex // guards nc against abort
	nc      net.Conn
	aborted bool
	br      *bufio.Reader
	hbuf    []byte // the response header block
	resp    Response
}

func newConn(addr, host string, timeout time.Duration) *conn {
	return &conn{addr: addr, host: host, timeout: timeout}
}

func (c *conn) close() {
	c.mu.Lock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
	c.mu.Unlock()
}

// abort makes the request in progress, and every later one, fail at once.
// It may be called from another goroutine.
func (c *conn) abort() {
	c.mu.Lock()
	c.aborted = true
	if c.nc != nil {
		c.nc.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// do sends the request and reads the response. On any error the
// connection is closed; the next call dials again.
func (c *conn) do(r *Request) (*Response, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return nil, err
		}
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 16<<10)
		} else {
			c.br.Reset(nc)
		}
		c.mu.Lock()
		c.nc = nc
		aborted := c.aborted
		c.mu.Unlock()
		if aborted {
			c.close()
			return nil, ErrStopped
		}
	}
	c.mu.Lock()
	if c.aborted {
		c.mu.Unlock()
		c.close()
		return nil, ErrStopped
	}
	if c.timeout > 0 {
		c.nc.SetDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
	if _, err := c.nc.Write(r.encode(c.host)); err != nil {
		c.close()
		return nil, err
	}
	keep, err := c.read(r.Method == "HEAD")
	if err != nil {
		c.close()
		if isTimeout(err) {
			return nil, &timeoutError{c.timeout, err}
		}
		return nil, err
	}
	if !keep {
		c.close()
	}
	return &c.resp, nil
}

// read reads one response into c.resp and reports whether the connection
// may be reused.
func (c *conn) read(head bool) (keep bool, err error) {
	c.hbuf = c.hbuf[:0]
	// Copy the header block out of the reader, which reuses its buffer.
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			if len(c.hbuf) == 0 && len(line) == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
				return false, errConnClosed
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return false, errors.New("response header line too long")
			}
			return false, err
		}
		c.hbuf = append(c.hbuf, line...)
		if len(line) <= 2 && len(c.hbuf) > len(line) { // the blank line
			break
		}
		if len(c.hbuf) > 1<<20 {
			return false, errors.New("response header too large")
		}
	}
	block := c.hbuf
	next := func() []byte { // the next line of block, without CRLF
		i := bytes.IndexByte(block, '\n')
		l := block[:i]
		block = block[i+1:]
		return bytes.TrimRight(l, "\r")
	}
	status := next()
	// HTTP/1.1 200 OK
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) {
		return false, fmt.Errorf("malformed status line %q", status)
	}
	code, ok := atoi3(status[9:12])
	if !ok {
		return false, fmt.Errorf("malformed status line %q", status)
	}
	c.resp.Status = code
	c.resp.Header = c.resp.Header[:0]
	c.resp.Body = c.resp.Body[:0]
	keep = status[7] == '1'
	length, chunked := -1, false
	for {
		l := next()
		if len(l) == 0 {
			break
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return false, fmt.Errorf("malformed header line %q", l)
		}
		value = bytes.TrimSpace(value)
		c.resp.Header = append(c.resp.Header, HeaderField{name, value})
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := atoi(value)
			if !ok {
				return false, fmt.Errorf("malformed Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case head || code == 204 || code == 304 || code/100 == 1:
	case chunked:
		if err := c.readChunked(); err != nil {
			return false, err
		}
	case length >= 0:
		c.resp.Body = grow(c.resp.Body, length)
		if _, err := io.ReadFull(c.br, c.resp.Body); err != nil {
			return false, err
		}
	default: // the body ends with the connection
		b, err := io.ReadAll(c.br)
		if err != nil {
			return false, err
		}
		c.resp.Body = append(c.resp.Body, b...)
		keep = false
	}
	return keep, nil
}

func (c *conn) readChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the blank line
				l, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(l)) == 0 {
					return nil
				}
			}
		}
		start := len(c.resp.Body)
		c.resp.Body = grow(c.resp.Body, start+int(n))
		if _, err := io.ReadFull(c.br, c.resp.Body[start:]); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil { // CRLF
			return err
		}
	}
}

// grow returns b with length n, reusing its storage when it can.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)
}

// atoi3 parses a three-digit status code.
func atoi3(b []byte) (int, bool) {
	if len(b) != 3 {
		return 0, false
	}
	return atoi(b)
}

// atoi parses a non-negative decimal number of at most 9 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// isReset tells whether err is the connection failing (reset, closed),
// which before any byte of the answer means the server closed it; not a
// timeout, which means the server did not answer in time.
func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// timeoutError is a request the server did not answer within the timeout.
type timeoutError struct {
	d   time.Duration
	err error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("timeout: no answer within %s (%v)", e.d, e.err)
}
func (e *timeoutError) Unwrap() error   { return e.err }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
