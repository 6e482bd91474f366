//go:build linux

package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The event loop is the closed loop's engine for plain http:// targets: each
// loop owns its connections on one OS thread and waits for all of them in one
// epoll_wait, as wrk does. Go's network poller, under the goroutine engine, reads
// a socket before it waits for it, so every answer cost two read calls (the
// first finding nothing); here an answer is read once, after epoll says it has
// arrived (docs/performance.md, "tide load as a load generator").
//
// It keeps the goroutine engine's meaning: each worker is one keep-alive
// connection sending its next request when the last is answered, a request's
// latency runs from the moment it was started (its connection's dial included),
// a kept connection found closed costs its request nothing (it is sent once
// more on a new one), and answers are read by the same parser
// (readAnswerHead, skipChunked).

const eventLoopAvailable = true

// chunkedAnswerLimit bounds a chunked body, which the loop holds whole until
// its last chunk arrives (a Content-Length body is counted as it comes, not
// held).
const chunkedAnswerLimit = 16 << 20

// evPlanEvery is how often a loop looks at the plan (workers to add or retire,
// the run's end) and at its requests' deadlines.
const evPlanEvery = 20 * time.Millisecond

// errAnswerTooLarge is a chunked answer over chunkedAnswerLimit.
var errAnswerTooLarge = fmt.Errorf("%w: a chunked answer over %d MiB", errMalformed, chunkedAnswerLimit>>20)

type evState uint8

const (
	evDisconnected evState = iota // no connection; the next request dials
	evConnecting                  // dialled, waiting for the connection
	evIdle                        // connected, no request
	evWriting                     // the request is partly written
	evReading                     // the request is written, its answer awaited
)

// evWorker is one worker of the closed loop: one connection at a time and
// the request on it.
type evWorker struct {
	fd       int
	state    evState
	interest uint32 // the epoll events asked for fd

	rng *rand.Rand
	seq uint64

	out      []byte // the request, kept whole until answered (for a retry)
	written  int
	in       []byte // bytes read and not yet taken by the answer
	head     answerHead
	haveHead bool
	left     int64 // body bytes still due (Content-Length)
	bodyN    int64 // body bytes counted
	got      bool  // any byte of this answer arrived
	reused   bool  // the connection carried an answer before this request
	retried  bool
	sent     time.Time
	deadline time.Time
	retire   bool // finish the request, then stop
}

func (w *evWorker) busy() bool {
	return w.state == evConnecting || w.state == evWriting || w.state == evReading
}

// eventLoop is one OS thread's share of the closed loop's workers.
type eventLoop struct {
	r       *run
	c       *HTTP1Client
	index   int // this loop's place among the run's loops
	loops   int
	epfd    int
	sa      syscall.Sockaddr
	family  int
	workers []*evWorker       // active, in order (retired from the end)
	byFD    map[int]*evWorker // every worker with an open connection
	events  []syscall.EpollEvent
	rd      bytes.Reader
	br      *bufio.Reader
	body    []byte
	ids     uint64 // workers started, for their random streams
	// again holds workers whose request failed, to start their next one from
	// the loop rather than from inside the failure: against a server that
	// refuses at once, dial -> fail -> next -> dial would otherwise recurse.
	again   []*evWorker
	spare   []*evWorker // again's other buffer
	stopped bool        // no new requests: the plan ended, ctx was cancelled or the requests ran out
	// exhausted is shared by the run's loops: once one finds the requests
	// (MaxRequests) all taken, every loop stops.
	exhausted *atomic.Bool
}

// runEventLoops runs the closed loop on event loops, one per usable CPU.
// It returns false, having sent nothing, when the target's address cannot be
// resolved or epoll is unavailable; the caller then runs the goroutine engine,
// which records each failing dial as a failed request.
func (r *run) runEventLoops(ctx context.Context) bool {
	sa, family, err := resolveSockaddr(ctx, r.cfg.HTTP1.addr)
	if err != nil {
		return false
	}
	n := max(1, runtime.GOMAXPROCS(0))
	loops := make([]*eventLoop, n)
	exhausted := new(atomic.Bool)
	for i := range loops {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			for _, l := range loops[:i] {
				syscall.Close(l.epfd)
			}
			return false
		}
		loops[i] = &eventLoop{r: r, c: r.cfg.HTTP1, index: i, loops: n, epfd: epfd, sa: copySockaddr(sa), family: family,
			exhausted: exhausted, byFD: map[int]*evWorker{}, events: make([]syscall.EpollEvent, 256), br: bufio.NewReaderSize(nil, h1ReadBuffer)}
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			l.run(ctx)
		}()
	}
	wg.Wait()
	return true
}

// resolveSockaddr resolves host:port once, preferring IPv4 as net.Dial's
// first try would.
func resolveSockaddr(ctx context.Context, addr string) (syscall.Sockaddr, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, 0, err
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return nil, 0, fmt.Errorf("resolve %s: %v", host, err)
	}
	ip := ips[0].IP
	for _, a := range ips {
		if a.IP.To4() != nil {
			ip = a.IP
			break
		}
	}
	if v4 := ip.To4(); v4 != nil {
		sa := &syscall.SockaddrInet4{Port: port}
		copy(sa.Addr[:], v4)
		return sa, syscall.AF_INET, nil
	}
	sa := &syscall.SockaddrInet6{Port: port}
	copy(sa.Addr[:], ip.To16())
	if ips[0].Zone != "" {
		if ifi, err := net.InterfaceByName(ips[0].Zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, syscall.AF_INET6, nil
}

// copySockaddr gives each loop an address of its own: connect(2) through the
// syscall package writes into the Sockaddr it is given.
func copySockaddr(sa syscall.Sockaddr) syscall.Sockaddr {
	switch v := sa.(type) {
	case *syscall.SockaddrInet4:
		c := *v
		return &c
	case *syscall.SockaddrInet6:
		c := *v
		return &c
	}
	return sa
}

// run is one loop: follow the plan's worker count, wait for events, and end
// once no new request may start and none is left in flight.
func (l *eventLoop) run(ctx context.Context) {
	defer func() {
		for fd := range l.byFD {
			syscall.Close(fd)
		}
		syscall.Close(l.epfd)
	}()
	var nextPlan time.Time
	for {
		now := time.Now()
		if !now.Before(nextPlan) {
			nextPlan = now.Add(evPlanEvery)
			l.followPlan(ctx, now)
			l.expire(now)

		}
		if l.stopped && l.inFlight() == 0 {
			return
		}
		wait := int(math.Ceil(float64(time.Until(nextPlan)) / float64(time.Millisecond)))
		if len(l.again) > 0 {
			wait = 0
		}
		n, err := syscall.EpollWait(l.epfd, l.events, max(wait, 0))
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			// epoll itself failing is not something a request can be blamed
			// for: stop sending and let the requests in flight time out.
			l.stopped = true
			time.Sleep(evPlanEvery)
			continue
		}
		for _, ev := range l.events[:n] {
			if w := l.byFD[int(ev.Fd)]; w != nil {
				l.ready(w, ev.Events)
			}
		}
		// Only the workers that failed before this pass: each pass goes back
		// to the plan and to epoll, however fast requests fail.
		pending := l.again
		l.again = l.spare[:0]
		for _, w := range pending {
			l.next(w)
		}
		l.spare = pending[:0]
	}
}

// followPlan starts or retires workers to this loop's share of the plan's
// count, and stops new requests at the plan's end or ctx's.
func (l *eventLoop) followPlan(ctx context.Context, now time.Time) {
	target, ok := l.r.cfg.Plan.Target(now.Sub(l.r.start))
	if !ok || ctx.Err() != nil || l.exhausted.Load() {
		l.stop()
		return
	}
	if l.stopped {
		return
	}
	want := int(math.Round(target))
	share := want / l.loops
	if l.index < want%l.loops {
		share++
	}
	for len(l.workers) > share {
		l.retire(l.workers[len(l.workers)-1])
		l.workers = l.workers[:len(l.workers)-1]
	}
	for len(l.workers) < share {
		l.ids++
		// The same streams as the goroutine engine's workers: each its own,
		// numbered across the loops.
		w := &evWorker{fd: -1, rng: rand.New(rand.NewPCG(l.r.cfg.Seed, uint64(l.index)+(l.ids-1)*uint64(l.loops)+1))}
		l.workers = append(l.workers, w)
		l.next(w)
		if l.stopped {
			return
		}
	}
}

// stop ends new requests; idle connections close now, busy ones when answered.
func (l *eventLoop) stop() {
	l.stopped = true
	for _, w := range l.workers {
		l.retire(w)
	}
	l.workers = nil
}

// retire lets w finish the request it is on, if any, and start no other; an
// idle worker's connection closes now.
func (l *eventLoop) retire(w *evWorker) {
	w.retire = true
	if !w.busy() {
		l.closeConn(w)
	}
}

func (l *eventLoop) inFlight() int {
	n := 0
	for _, w := range l.byFD {
		if w.busy() {
			n++
		}
	}
	return n
}

// expire fails the requests whose deadline has passed.
func (l *eventLoop) expire(now time.Time) {
	if l.c.timeout <= 0 {
		return
	}
	for _, w := range l.byFD {
		if w.busy() && now.After(w.deadline) {
			l.fail(w, os.ErrDeadlineExceeded, false)
		}
	}
}

// next starts the worker's next request, unless it is retired, the run has
// stopped or the run's requests are all taken.
func (l *eventLoop) next(w *evWorker) {
	if w.retire || l.stopped {
		if !w.busy() {
			l.closeConn(w)
		}
		return
	}
	if !l.r.take() {
		l.exhausted.Store(true)
		l.stop()
		return
	}
	var body []byte
	if l.r.cfg.Body != nil {
		l.body = l.r.cfg.Body.Render(l.body[:0], w.rng, w.seq)
		body = l.body
	}
	traceparent := ""
	if l.r.startsTrace(w.rng) {
		traceparent = newTraceparent(w.rng)
	}
	w.seq++
	w.out = l.c.appendRequest(w.out[:0], body, traceparent)
	w.retried = false
	l.r.rec.started(false)
	w.sent = time.Now()
	w.deadline = w.sent.Add(l.c.timeout)
	l.send(w)
}

// send puts the worker's request on its connection, dialling one first if it
// has none.
func (l *eventLoop) send(w *evWorker) {
	w.written, w.got, w.haveHead, w.bodyN, w.in = 0, false, false, 0, w.in[:0]
	if w.state == evDisconnected {
		l.dial(w)
		return
	}
	w.state = evWriting
	l.write(w)
}

func (l *eventLoop) dial(w *evWorker) {
	fd, err := syscall.Socket(l.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(w, os.NewSyscallError("socket", err), false)
		return
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	w.fd, w.reused, w.interest = fd, false, 0
	l.byFD[fd] = w
	switch err := syscall.Connect(fd, l.sa); err {
	case nil:
		w.state = evWriting
		l.write(w)
	case syscall.EINPROGRESS:
		w.state = evConnecting
		l.want(w, syscall.EPOLLOUT)
	default:
		l.fail(w, os.NewSyscallError("connect", err), false)
	}
}

// want sets the events the loop waits for on the worker's connection.
func (l *eventLoop) want(w *evWorker, events uint32) {
	if w.interest == events {
		return
	}
	op := syscall.EPOLL_CTL_MOD
	if w.interest == 0 {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(l.epfd, op, w.fd, &syscall.EpollEvent{Events: events, Fd: int32(w.fd)}); err != nil {
		l.fail(w, os.NewSyscallError("epoll_ctl", err), false)
		return
	}
	w.interest = events
}

// ready handles what epoll reported for the worker's connection.
func (l *eventLoop) ready(w *evWorker, events uint32) {
	switch w.state {
	case evConnecting:
		if errno, err := syscall.GetsockoptInt(w.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = syscall.Errno(errno)
			}
			l.fail(w, os.NewSyscallError("connect", err), false)
			return
		}
		w.state = evWriting
		l.write(w)
	case evWriting:
		l.write(w)
	case evReading:
		l.read(w)
	case evIdle:
		// An idle connection that turns readable was closed by its server (or
		// sent what nobody asked for): it is not kept.
		l.closeConn(w)
		l.next(w)
	}
}

func (l *eventLoop) write(w *evWorker) {
	for w.written < len(w.out) {
		n, err := rawWrite(w.fd, w.out[w.written:])
		if err == syscall.EAGAIN {
			l.want(w, syscall.EPOLLIN|syscall.EPOLLOUT)
			return
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			l.fail(w, os.NewSyscallError("write", err), true)
			return
		}
		w.written += n
	}
	w.state = evReading
	l.want(w, syscall.EPOLLIN)
}

// read takes what arrived (one read: epoll said it is there) and goes on with
// the answer.
func (l *eventLoop) read(w *evWorker) {
	if len(w.in) == cap(w.in) {
		// Only a chunked body is held (a head is bounded by its line and
		// line-count limits, far below this).
		if len(w.in) >= chunkedAnswerLimit {
			l.fail(w, errAnswerTooLarge, true)
			return
		}
		grown := make([]byte, len(w.in), min(max(h1ReadBuffer, 2*cap(w.in)), chunkedAnswerLimit))
		w.in = grown[:copy(grown, w.in)]
	}
	n, err := rawRead(w.fd, w.in[len(w.in):cap(w.in)])
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case err != nil:
		l.fail(w, os.NewSyscallError("read", err), true)
		return
	case n > 0:
		w.got = true
		w.in = w.in[:len(w.in)+n]
		l.answer(w, false)
	default:
		l.answer(w, true)
	}
}

// answer goes as far through the answer as the bytes read allow; eof says the
// server has closed the connection.
func (l *eventLoop) answer(w *evWorker, eof bool) {
	if !w.haveHead {
		l.rd.Reset(w.in)
		l.br.Reset(&l.rd)
		h, err := readAnswerHead(l.br)
		if err != nil {
			if !eof && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return // more is coming
			}
			l.fail(w, err, true)
			return
		}
		w.head, w.haveHead = h, true
		w.in = w.in[:copy(w.in, w.in[len(w.in)-l.rd.Len()-l.br.Buffered():])]
		switch {
		case h.bodyless(l.c.isHead):
			l.done(w, h.keep)
			return
		case h.chunked:
		case h.length >= 0:
			w.left = h.length
		}
	}
	h := w.head
	switch {
	case h.chunked:
		l.rd.Reset(w.in)
		l.br.Reset(&l.rd)
		n, err := skipChunked(l.br)
		if err != nil {
			if !eof && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return // more is coming (read bounds what is held)
			}
			w.bodyN = n
			l.fail(w, err, true)
			return
		}
		w.bodyN = n
		w.in = w.in[:copy(w.in, w.in[len(w.in)-l.rd.Len()-l.br.Buffered():])]
		l.done(w, h.keep)
	case h.length >= 0:
		take := min(int64(len(w.in)), w.left)
		w.bodyN += take
		w.left -= take
		w.in = w.in[:copy(w.in, w.in[take:])]
		if w.left == 0 {
			l.done(w, h.keep)
		} else if eof {
			l.fail(w, io.ErrUnexpectedEOF, true)
		}
	default: // to the end of the connection
		w.bodyN += int64(len(w.in))
		w.in = w.in[:0]
		if eof {
			l.done(w, false)
		}
	}
}

// done records an answered request and starts the worker's next one.
func (l *eventLoop) done(w *evWorker, keep bool) {
	took := time.Since(w.sent)
	l.r.rec.finished(took, took, w.head.status, w.bodyN, nil)
	if keep && len(w.in) == 0 {
		w.state, w.reused = evIdle, true
	} else {
		l.closeConn(w)
	}
	l.next(w)
}

// fail ends the worker's request with err, unless it was sent on a kept
// connection that the server had closed meanwhile (no byte of an answer, the
// stream's end or a reset): then it is sent once more on a new connection, as
// the goroutine engine's client does. sentOnConn says the request had reached
// a connection (a failed dial is not retried).
func (l *eventLoop) fail(w *evWorker, err error, sentOnConn bool) {
	stale := sentOnConn && w.reused && !w.got && !w.retried && (err == io.EOF || err == io.ErrUnexpectedEOF || staleConn(err))
	l.closeConn(w)
	if stale {
		w.retried = true
		l.send(w)
		return
	}
	if err == io.ErrUnexpectedEOF && !w.got {
		err = io.EOF
	}
	l.r.rec.finished(time.Since(w.sent), time.Since(w.sent), 0, w.bodyN, err)
	l.again = append(l.again, w)
}

// closeConn closes the worker's connection, if it has one.
func (l *eventLoop) closeConn(w *evWorker) {
	if w.fd >= 0 {
		delete(l.byFD, w.fd)
		syscall.Close(w.fd)
	}
	w.fd, w.state, w.interest = -1, evDisconnected, 0
}

// rawRead and rawWrite are read(2) and write(2) without telling the Go
// scheduler: on a non-blocking socket they never wait, so the hand-off that
// syscall.Read makes (in case the call blocks) is pure cost, paid twice per
// request.
func rawRead(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
