//go:build linux

package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers every request on every connection with raw, written in
// pieces with pauses between them (so the event loop meets answers that arrive
// in parts), and closes the connection after the answer when closeAfter says
// so. It counts the connections it accepted.
func rawServer(t *testing.T, raw string, pieces int, closeAfter bool) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					step := max(1, len(raw)/pieces)
					for i := 0; i < len(raw); i += step {
						if _, err := c.Write([]byte(raw[i:min(i+step, len(raw))])); err != nil {
							return
						}
						time.Sleep(2 * time.Millisecond)
					}
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// The event loops read whatever a server sends, in however many parts it
// arrives, with the parser the goroutine engine uses: each answer is counted
// with its status and its body's length, or as the error it is.
func TestEventLoopReadsAnswersInParts(t *testing.T) {
	for _, c := range []struct {
		name, raw  string
		closeAfter bool
		status     int
		n          int64  // body bytes per answer
		errKind    string // "" for none
	}{
		{name: "length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, n: 5},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", status: 200, n: 14},
		{name: "close-delimited 1.0", raw: "HTTP/1.0 200 OK\r\n\r\nuntil the end", closeAfter: true, status: 200, n: 13},
		{name: "close", raw: "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", closeAfter: true, status: 503, n: 1},
		{name: "continue first", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", status: 201, n: 3},
		{name: "no content", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status: 204},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", closeAfter: true, errKind: "unexpected EOF"},
		{name: "truncated chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", closeAfter: true, errKind: "unexpected EOF"},
		{name: "garbage", raw: "SSH-2.0-OpenSSH\r\n", closeAfter: true, errKind: `malformed HTTP answer: status line "SSH-2.0-OpenSSH"`},
		{name: "endless line", raw: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 20000) + "\r\n\r\n", closeAfter: true,
			errKind: "malformed HTTP answer: a line longer than 16384 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := rawServer(t, c.raw, 3, c.closeAfter)
			cfg := withEngine(t, Config{Target: mustTarget(t, "http://"+addr+"/predict"), Mode: Closed, MaxRequests: 6,
				Plan: Plan{{Forever, 2, 2}}, Body: StaticBody(`{}`)}, eventLoops, 5*time.Second)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Summary
			if c.errKind != "" {
				if s.ErrorKinds[c.errKind] != 6 {
					t.Errorf("error kinds %v, want 6 × %q", s.ErrorKinds, c.errKind)
				}
				return
			}
			if s.StatusCode[c.status] != 6 || s.BytesIn != 6*c.n || len(s.ErrorKinds) != 0 {
				t.Errorf("status %v, %d body bytes, errors %v; want 6 × %d, %d bytes", s.StatusCode, s.BytesIn, s.ErrorKinds, c.status, 6*c.n)
			}
		})
	}
}

// A kept connection the server closed after its answer, without saying so,
// costs the next request nothing: it is sent again on a new connection.
func TestEventLoopRetriesAClosedKeptConnection(t *testing.T) {
	addr, conns := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1, true)
	cfg := withEngine(t, Config{Target: mustTarget(t, "http://"+addr+"/predict"), Mode: Closed, MaxRequests: 50,
		Plan: Plan{{Forever, 2, 2}}}, eventLoops, 5*time.Second)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summary; s.OK != 50 || s.Errors != 0 {
		t.Errorf("ok %d, errors %v; want 50 answered", s.OK, s.ErrorKinds)
	}
	if conns.Load() < 50 {
		t.Errorf("%d connections for 50 answers on connections closed after each", conns.Load())
	}
}

// Bodies are counted as they come, not held: a 3 MB answer with a length
// and a 2 MB chunked one are read whole on every request; a chunked answer
// beyond what the loop holds is an error, not a growing buffer.
func TestEventLoopLargeAnswers(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "3145728")
			for range 3 {
				io.WriteString(w, big)
			}
		case "/chunked":
			for range 2 {
				io.WriteString(w, big)
				w.(http.Flusher).Flush()
			}
		case "/endless":
			for range 17 {
				if _, err := io.WriteString(w, big); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	for path, want := range map[string]int64{"/length": 3 << 20, "/chunked": 2 << 20} {
		cfg := withEngine(t, Config{Target: mustTarget(t, srv.URL+path), Mode: Closed, MaxRequests: 4, Plan: Plan{{Forever, 2, 2}}}, eventLoops, 10*time.Second)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s := res.Summary; s.OK != 4 || s.BytesIn != 4*want {
			t.Errorf("%s: ok %d, %d bytes, errors %v; want 4 answers of %d bytes", path, s.OK, s.BytesIn, s.ErrorKinds, want)
		}
	}
	cfg := withEngine(t, Config{Target: mustTarget(t, srv.URL+"/endless"), Mode: Closed, MaxRequests: 1, Plan: Plan{{Forever, 1, 1}}}, eventLoops, 10*time.Second)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if kinds := res.Summary.ErrorKinds; kinds["malformed HTTP answer: a chunked answer over 16 MiB"] != 1 {
		t.Errorf("error kinds %v, want the chunked answer refused past 16 MiB", kinds)
	}
}

// A request that asks for its connection to be closed gets a new one each
// time, as it does on the goroutine engine (the two-node e2e test sends its
// load this way so that every request is placed afresh).
func TestEventLoopConnectionClose(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg := withEngine(t, Config{Target: mustTarget(t, srv.URL), Mode: Closed, MaxRequests: 30, Plan: Plan{{Forever, 3, 3}},
		Header: http.Header{"Connection": {"close"}}}, eventLoops, 5*time.Second)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summary; s.OK != 30 || conns.Load() != 30 {
		t.Errorf("ok %d (errors %v) over %d connections; want 30 over 30", s.OK, s.ErrorKinds, conns.Load())
	}
}

// Cancelling the run stops new requests at once and lets the ones in flight
// finish: nothing is left counted as in flight, and the run ends with them.
func TestEventLoopCancelFinishesInFlight(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(150 * time.Millisecond) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, cancel)
	cfg := withEngine(t, Config{Target: mustTarget(t, srv.URL), Mode: Closed, Plan: Plan{{Forever, 4, 4}}}, eventLoops, 5*time.Second)
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the run took %s after a cancel at 400 ms", took)
	}
	if s.Sent != s.Completed || s.Errors != 0 || s.OK < 8 {
		t.Errorf("sent %d, completed %d, ok %d, errors %v: want every request sent answered", s.Sent, s.Completed, s.OK, s.ErrorKinds)
	}
}

// FuzzEventLoopAnswer: an answer that arrives in three parts, cut anywhere,
// reads on the event loop as it does in one piece through readResponse (the
// goroutine engine's reader): the same status and body length, or an error
// for both; and the loop never counts more body than came.
func FuzzEventLoopAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint16(3), uint16(20))
	}
	f.Fuzz(func(t *testing.T, raw []byte, cut1, cut2 uint16) {
		wantStatus, wantN, _, wantErr := readResponse(bufio.NewReaderSize(strings.NewReader(string(raw)), h1ReadBuffer), false)

		r := &run{rec: newRecorder()}
		l := &eventLoop{r: r, c: &HTTP1Client{}, br: bufio.NewReaderSize(nil, h1ReadBuffer), byFD: map[int]*evWorker{}, exhausted: new(atomic.Bool)}
		// retire: once answered, the worker sends nothing more (and has no
		// connection to close).
		w := &evWorker{fd: -1, state: evReading, retire: true, sent: time.Now()}
		a := min(int(cut1), len(raw))
		b := min(max(int(cut2), a), len(raw))
		for _, part := range [][]byte{raw[:a], raw[a:b], raw[b:]} {
			if w.state != evReading {
				break
			}
			w.in = append(w.in, part...)
			w.got = w.got || len(part) > 0
			l.answer(w, false)
		}
		if w.state == evReading {
			l.answer(w, true) // the server closed the connection
		}
		if w.state == evReading {
			t.Fatal("the answer neither ended nor failed at the connection's end")
		}
		s := r.rec.summary()
		if s.BytesIn < 0 || s.BytesIn > int64(len(raw)) {
			t.Fatalf("counted %d body bytes of a %d-byte answer", s.BytesIn, len(raw))
		}
		// Transport errors are counted by kind; a non-2xx answer is an
		// answer (Errors counts both).
		failed := int64(0)
		for _, n := range s.ErrorKinds {
			failed += n
		}
		switch {
		case wantErr == nil && (failed != 0 || s.StatusCode[wantStatus] != 1 || s.BytesIn != wantN):
			t.Fatalf("in parts: status %v, %d bytes, errors %v; in one piece: %d, %d bytes", s.StatusCode, s.BytesIn, s.ErrorKinds, wantStatus, wantN)
		case wantErr != nil && (failed != 1 || len(s.StatusCode) != 0):
			t.Fatalf("in one piece: %v; in parts: status %v, errors %v", wantErr, s.StatusCode, s.ErrorKinds)
		}
	})
}
