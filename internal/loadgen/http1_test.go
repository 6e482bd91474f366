package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// withHTTP1 sets cfg up to send through the HTTP/1.1 client, as tide load does
// for http:// targets.
func withHTTP1(t *testing.T, cfg Config, timeout time.Duration) Config {
	t.Helper()
	c, err := NewHTTP1Client(cfg, timeout, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.HTTP1 = c
	return cfg
}

// An httpEngine is one way a run carries http:// requests.
type httpEngine string

const (
	netHTTP    httpEngine = "net/http"
	ownClient  httpEngine = "own client"  // tide load's HTTP/1.1 client, a goroutine per request
	eventLoops httpEngine = "event loops" // the same client's requests on epoll loops (closed loop)
)

// httpEngines are the engines a closed loop can run on here.
func httpEngines() []httpEngine {
	if eventLoopAvailable {
		return []httpEngine{netHTTP, ownClient, eventLoops}
	}
	return []httpEngine{netHTTP, ownClient}
}

// withEngine sets cfg up to run on e, as tide load does for e (its default
// for a closed loop on an http:// target is the event loops).
func withEngine(t *testing.T, cfg Config, e httpEngine, timeout time.Duration) Config {
	t.Helper()
	if e == netHTTP {
		return cfg
	}
	cfg = withHTTP1(t, cfg, timeout)
	cfg.EventLoop = e == eventLoops
	return cfg
}

// The client's requests are what net/http's server expects: method, path and
// query, Host, the default Content-Type, the body and its length, extra headers;
// connections are kept across requests; bodies are counted whatever their
// framing.
func TestHTTP1ClientRequestsAndReuse(t *testing.T) {
	var conns, requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.RequestURI() != "/v2/models/m/infer?x=1" || string(body) != `{"a":1}` ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Team") != "ml" || r.ContentLength != 7 {
			t.Errorf("request %s %s %q, headers %v", r.Method, r.URL.RequestURI(), body, r.Header)
		}
		if requests.Load()%2 == 0 {
			w.(http.Flusher).Flush() // chunked: no length known when the body starts
		}
		w.Write([]byte("0123456789"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg := withHTTP1(t, Config{
		Target: mustTarget(t, srv.URL+"/v2/models/m/infer?x=1"), Mode: Closed, MaxRequests: 300,
		Plan: Plan{{Forever, 4, 4}}, Body: StaticBody(`{"a":1}`), Header: http.Header{"X-Team": {"ml"}},
	}, 5*time.Second)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.OK != 300 || requests.Load() != 300 {
		t.Fatalf("ok %d, server saw %d, want 300 (errors %v)", s.OK, requests.Load(), s.ErrorKinds)
	}
	if s.BytesIn != 3000 {
		t.Errorf("%d body bytes read, want 3000", s.BytesIn)
	}
	if conns.Load() > 4 {
		t.Errorf("%d connections for 4 workers: not kept alive", conns.Load())
	}
}

// A kept connection that the server closed meanwhile (here: every connection
// after one answer, without saying so) costs the request nothing: it is sent
// again on a new connection.
func TestHTTP1RetriesAClosedKeptConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				time.Sleep(20 * time.Millisecond) // closed once the client has kept it
			}()
		}
	}()
	cfg := withHTTP1(t, Config{Target: mustTarget(t, "http://"+ln.Addr().String()+"/predict"), Mode: Closed,
		MaxRequests: 20, Plan: Plan{{Forever, 1, 1}}}, 5*time.Second)
	var ok int64
	for i := 0; i < 20; i++ {
		status, n, err := cfg.HTTP1.Do(nil, "")
		if err != nil || status != 200 || n != 2 {
			t.Fatalf("request %d: %d %d %v", i, status, n, err)
		}
		ok++
		time.Sleep(40 * time.Millisecond)
	}
}

func TestHTTP1Answers(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		head      bool
		status    int
		n         int64
		keep      bool
		err       string // substring; "" for none
	}{
		{name: "length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, n: 5, keep: true},
		{name: "lower-case names, LF only", raw: "HTTP/1.1 404 Not Found\ncontent-length: 2\n\nno", status: 404, n: 2, keep: true},
		{name: "no reason", raw: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", status: 200, keep: true},
		{name: "close-delimited 1.0", raw: "HTTP/1.0 200 OK\r\n\r\nuntil the end", status: 200, n: 13},
		{name: "1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", status: 200, n: 1, keep: true},
		{name: "close", raw: "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", status: 503, n: 1},
		{name: "continue first", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", status: 201, n: 3, keep: true},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", status: 200, n: 14, keep: true},
		{name: "no content", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status: 204, keep: true},
		{name: "head", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true, status: 200, keep: true},
		{name: "same length twice", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", status: 200, n: 1, keep: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", status: 200, n: 3, err: "unexpected EOF"},
		{name: "truncated headers", raw: "HTTP/1.1 200 OK\r\nContent-Le", status: 200, err: "unexpected EOF"},
		{name: "nothing", raw: "", err: "EOF"},
		{name: "HTTP/2", raw: "HTTP/2 200\r\n\r\n", err: "status line"},
		{name: "four digits", raw: "HTTP/1.1 2000 OK\r\n\r\n", err: "status line"},
		{name: "letters", raw: "HTTP/1.1 2x0 OK\r\n\r\n", err: "status line"},
		{name: "low status", raw: "HTTP/1.1 099 OK\r\n\r\n", err: "status 99"},
		{name: "garbage", raw: "SSH-2.0-OpenSSH\r\n", err: "status line"},
		{name: "two lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", status: 200, err: "Content-Length"},
		{name: "negative length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", status: 200, err: "Content-Length"},
		{name: "no colon", raw: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", status: 200, err: "without a name"},
		{name: "bad chunk", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 200, err: "chunk size"},
		{name: "chunk without end", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", status: 200, n: 2, err: "line end"},
		{name: "endless headers", raw: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 300) + "\r\n", status: 200, err: "header lines"},
		{name: "endless line", raw: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 20000) + "\r\n\r\n", status: 200, err: "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(c.raw), h1ReadBuffer)
			status, n, keep, err := readResponse(r, c.head)
			if status != c.status || n != c.n || (c.err == "" && keep != c.keep) {
				t.Errorf("status %d, %d bytes, keep %v; want %d, %d, %v", status, n, keep, c.status, c.n, c.keep)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one with %q", err, c.err)
			case c.err != "" && err != nil && keep:
				t.Errorf("a failed answer left the connection to be kept")
			}
		})
	}
	// Answers one after the other on a kept connection are read one by one.
	r := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"))
	for _, want := range []int{200, 500} {
		if status, _, keep, err := readResponse(r, false); status != want || !keep || err != nil {
			t.Fatalf("got %d %v %v, want %d", status, keep, err, want)
		}
	}
	if _, _, _, err := readResponse(r, false); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last answer: %v, want EOF", err)
	}
}

func TestHTTP1RefusesWhatItCannotSend(t *testing.T) {
	if _, err := NewHTTP1Client(Config{Target: mustTarget(t, "https://example.com/predict")}, time.Second, 1); err == nil {
		t.Error("an https target was taken")
	}
	_, err := NewHTTP1Client(Config{Target: mustTarget(t, "http://127.0.0.1:1/predict"), Header: http.Header{"X": {"a\r\nEvil: 1"}}}, time.Second, 1)
	if err == nil {
		t.Error("a header with a line break was taken")
	}
}

// FuzzReadResponse: whatever a server sends, reading it ends (an error or an
// answer) without a panic, and a body is never counted longer than what came.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		r := bufio.NewReaderSize(strings.NewReader(string(raw)), h1ReadBuffer)
		_, n, _, _ := readResponse(r, head)
		if n < 0 || n > int64(len(raw)) {
			t.Fatalf("counted %d body bytes of a %d-byte answer", n, len(raw))
		}
	})
}
