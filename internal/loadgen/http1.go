package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// HTTP1Client is tide load's own HTTP/1.1 client for plain http:// targets:
// keep-alive connections to one host, each request written from prepared
// bytes in one write, each answer read only as far as its status, its framing
// and the end of its body. net/http's client spent about 14 µs of CPU per
// request on a load generator's core (wrk: under 1 µs outside the kernel), so
// a generator on one core could not load a server on another to its limit
// (docs/performance.md). Bodies are counted, not kept.
//
// It speaks what a load test needs and no more: no TLS (https goes through
// net/http), no proxies, no redirects, no compression. It reads any answer a
// conforming server sends: Content-Length, chunked or close-delimited bodies,
// informational (1xx) answers before the final one, HEAD, 204 and 304.
type HTTP1Client struct {
	addr    string
	timeout time.Duration
	// head is the request line and the fixed headers, up to and excluding
	// Content-Length and the blank line.
	head    []byte
	hasBody bool
	isHead  bool
	idle    chan *h1conn
	dialer  net.Dialer
}

// h1conn is one keep-alive connection with its read buffer and the scratch
// buffer its requests are written from.
type h1conn struct {
	net.Conn
	r      *bufio.Reader
	out    []byte
	reused bool
}

// maxHeaderLines bounds the header lines of one answer, and h1ReadBuffer the
// length of one line (bufio refuses a longer one), so that a hostile server
// cannot make the generator hold an answer's headers without end.
const (
	maxHeaderLines = 256
	h1ReadBuffer   = 16 << 10
)

// NewHTTP1Client prepares requests of cfg's method, target and headers
// (Content-Type defaults to application/json when a body is sent, as with
// net/http). timeout bounds each request from its write to its last byte;
// maxConns bounds the idle connections kept.
func NewHTTP1Client(cfg Config, timeout time.Duration, maxConns int) (*HTTP1Client, error) {
	u := cfg.Target.URL
	if u == nil || u.Scheme != "http" {
		return nil, fmt.Errorf("the HTTP/1.1 client takes http:// targets")
	}
	method := cfg.Method
	if method == "" {
		method = http.MethodGet
		if cfg.Body != nil {
			method = http.MethodPost
		}
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tide-load\r\n", method, u.RequestURI(), u.Host)
	hasType := false
	for k, vs := range cfg.Header {
		for _, v := range vs {
			if badHeader(k) || badHeader(v) {
				return nil, fmt.Errorf("header %q: a name or value with a line break", k)
			}
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
		hasType = hasType || http.CanonicalHeaderKey(k) == "Content-Type"
	}
	if cfg.Body != nil && !hasType {
		head.WriteString("Content-Type: application/json\r\n")
	}
	if maxConns <= 0 {
		maxConns = 10000
	}
	return &HTTP1Client{
		addr: addr, timeout: timeout, head: head.Bytes(), hasBody: cfg.Body != nil, isHead: method == http.MethodHead,
		idle: make(chan *h1conn, maxConns), dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
	}, nil
}

func badHeader(s string) bool { return bytes.ContainsAny([]byte(s), "\r\n") }

// Close closes the idle connections.
func (c *HTTP1Client) Close() {
	for {
		select {
		case cn := <-c.idle:
			cn.Close()
		default:
			return
		}
	}
}

// Do sends one request with body (nil when the client has none) and an
// optional traceparent header, and reads the answer to its end. It returns the
// status and the body's length. A request on a kept connection that the server
// had closed meanwhile (nothing of an answer read) is sent once more on a new
// one, as net/http does.
func (c *HTTP1Client) Do(body []byte, traceparent string) (status int, n int64, err error) {
	for attempt := 0; ; attempt++ {
		cn, err := c.get()
		if err != nil {
			return 0, 0, err
		}
		status, n, keep, read, err := c.exchange(cn, body, traceparent)
		if err != nil {
			cn.Close()
			if cn.reused && !read && attempt == 0 && staleConn(err) {
				continue
			}
			return status, n, err
		}
		if keep {
			c.put(cn)
		} else {
			cn.Close()
		}
		return status, n, nil
	}
}

// staleConn reports an error that a kept connection closed by its server
// gives to the next request on it: the end of the stream before any byte of
// an answer (a partly read answer ends in io.ErrUnexpectedEOF instead), or a
// reset.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *HTTP1Client) get() (*h1conn, error) {
	select {
	case cn := <-c.idle:
		cn.reused = true
		return cn, nil
	default:
	}
	nc, err := c.dialer.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &h1conn{Conn: nc, r: bufio.NewReaderSize(nc, h1ReadBuffer), out: make([]byte, 0, 512)}, nil
}

func (c *HTTP1Client) put(cn *h1conn) {
	select {
	case c.idle <- cn:
	default:
		cn.Close()
	}
}

// exchange writes the request and reads the answer. read reports whether any
// byte of an answer arrived (a request is only retried when none did).
func (c *HTTP1Client) exchange(cn *h1conn, body []byte, traceparent string) (status int, n int64, keep, read bool, err error) {
	cn.out = c.appendRequest(cn.out[:0], body, traceparent)
	out := cn.out
	if c.timeout > 0 {
		cn.SetDeadline(time.Now().Add(c.timeout))
	}
	if _, err := cn.Write(out); err != nil {
		return 0, 0, false, false, err
	}
	status, n, keep, err = readResponse(cn.r, c.isHead)
	return status, n, keep, status != 0, err
}

// appendRequest appends one whole request (head, optional traceparent,
// framing and body) to out, ready to be written in one call.
func (c *HTTP1Client) appendRequest(out, body []byte, traceparent string) []byte {
	out = append(out, c.head...)
	if traceparent != "" {
		out = append(out, "Traceparent: "...)
		out = append(out, traceparent...)
		out = append(out, "\r\n"...)
	}
	if c.hasBody {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(body)), 10)
		out = append(out, "\r\n\r\n"...)
		return append(out, body...)
	}
	return append(out, "\r\n"...)
}

// errMalformed marks an answer that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP answer")

// answerHead is what an answer's status line and headers say about its body
// and its connection.
type answerHead struct {
	status  int
	length  int64 // the Content-Length; -1 when none was given
	chunked bool
	keep    bool // the connection may carry another request
}

// bodyless says the answer has no body whatever its headers say: the answer
// to a HEAD, 204, 304 (and 101, which ends HTTP on the connection).
func (h answerHead) bodyless(head bool) bool {
	return head || h.status == http.StatusNoContent || h.status == http.StatusNotModified || h.status < 200
}

// readResponse reads one final answer from r, skipping informational ones:
// its status, its body's length, and whether the connection may carry another
// request. head says the request was a HEAD (no body follows).
func readResponse(r *bufio.Reader, head bool) (status int, n int64, keep bool, err error) {
	h, err := readAnswerHead(r)
	if err != nil {
		return h.status, 0, false, err
	}
	switch {
	case h.bodyless(head):
		return h.status, 0, h.keep, nil
	case h.chunked:
		n, err = skipChunked(r)
		return h.status, n, h.keep && err == nil, err
	case h.length >= 0:
		d, err := r.Discard(int(min(h.length, int64(^uint(0)>>1))))
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h.status, int64(d), h.keep && err == nil, err
	default:
		// No length: the body runs to the end of the connection.
		n, err = io.Copy(io.Discard, r)
		return h.status, n, false, err
	}
}

// readAnswerHead reads the status line and headers of the final answer,
// skipping informational (1xx) answers before it, and stops at its body.
func readAnswerHead(r *bufio.Reader) (answerHead, error) {
	for {
		h := answerHead{length: -1}
		line, err := readLine(r)
		if err != nil {
			return h, err
		}
		var minor byte
		if h.status, minor, err = parseStatusLine(line); err != nil {
			return h, err
		}
		h.keep = minor == '1'
		for i := 0; ; i++ {
			if i == maxHeaderLines {
				return h, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaderLines)
			}
			line, err := readLine(r)
			if err != nil {
				return h, err
			}
			if len(line) == 0 {
				break
			}
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return h, fmt.Errorf("%w: header line without a name", errMalformed)
			}
			name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				v, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || v < 0 || h.length >= 0 && v != h.length {
					return h, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
				}
				h.length = v
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				h.chunked = bytes.HasSuffix(bytes.ToLower(value), []byte("chunked"))
			case bytes.EqualFold(name, []byte("Connection")):
				switch {
				case bytes.EqualFold(value, []byte("close")):
					h.keep = false
				case bytes.EqualFold(value, []byte("keep-alive")):
					h.keep = true
				}
			}
		}
		if h.status >= 100 && h.status < 200 && h.status != http.StatusSwitchingProtocols {
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		return h, nil
	}
}

// readLine reads one CRLF- (or LF-) terminated line without its terminator.
// The slice is valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: a line longer than %d bytes", errMalformed, h1ReadBuffer)
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// parseStatusLine reads "HTTP/1.x NNN reason" and returns the status and x.
func parseStatusLine(line []byte) (int, byte, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line, 40))
	}
	status := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line, 40))
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return 0, 0, fmt.Errorf("%w: status %d", errMalformed, status)
	}
	return status, line[7], nil
}

// skipChunked reads a chunked body to its end (trailers included) and returns
// its length.
func skipChunked(r *bufio.Reader) (int64, error) {
	var n int64
	for {
		line, err := readLine(r)
		if err != nil {
			return n, err
		}
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return n, fmt.Errorf("%w: chunk size %q", errMalformed, truncateBytes(line, 20))
		}
		if size == 0 {
			for i := 0; ; i++ { // trailers, up to the blank line
				if i == maxHeaderLines {
					return n, fmt.Errorf("%w: more than %d trailer lines", errMalformed, maxHeaderLines)
				}
				line, err := readLine(r)
				if err != nil {
					return n, err
				}
				if len(line) == 0 {
					return n, nil
				}
			}
		}
		d, err := r.Discard(int(min(size, int64(^uint(0)>>1))))
		n += int64(d)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if line, err := readLine(r); err != nil || len(line) != 0 {
			if err == nil {
				err = fmt.Errorf("%w: chunk not followed by a line end", errMalformed)
			}
			return n, err
		}
	}
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
