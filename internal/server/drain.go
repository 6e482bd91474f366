package server

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// drainArrivals records the clients that still arrive once the server drains, so
// that it closes its listeners only when they have stopped coming (Knative's
// drainer waits for a quiet period the same way).
//
// Why: the drain delay is a guess at how long the node's Service rules, an
// ingress or a cloud load balancer take to drop a pod that turned unready. A
// kube-proxy starved of CPU has been seen to take longer than 5 s, and every
// connection it sends after the listener closed is refused. While draining,
// every response says "Connection: close", so a client that is still routed here
// comes back on a new connection and shows up as a new arrival; once the
// routing has moved, arrivals stop.
type drainArrivals struct {
	last  atomic.Int64 // UnixNano of the latest arrival while draining (0: none)
	count atomic.Int64 // arrivals while draining
}

func (a *drainArrivals) arrived() {
	a.last.Store(time.Now().UnixNano())
	a.count.Add(1)
}

// isTraffic tells a client's request from the kubelet's probes and Prometheus's
// scrapes (quietRoutes), which go to the pod directly whatever the Service does
// and so must not keep a draining pod listening. It looks the route up again,
// which only a draining server pays for.
func (s *Server) isTraffic(r *http.Request) bool {
	_, pattern := s.mux.Handler(r)
	return !quietRoutes[pattern]
}

// waitQuiet returns once no client has arrived for quiet, or once limit has
// passed, whichever is first; kept is how long it waited and settled whether the
// arrivals had stopped. It returns at once when quiet is 0 or the last arrival is
// already quiet long ago.
func (a *drainArrivals) waitQuiet(quiet, limit time.Duration) (kept time.Duration, settled bool) {
	if quiet <= 0 {
		return 0, true
	}
	start := time.Now()
	for {
		since := time.Since(time.Unix(0, a.last.Load()))
		if since >= quiet {
			return time.Since(start), true
		}
		left := limit - time.Since(start)
		if left <= 0 {
			return time.Since(start), false
		}
		time.Sleep(min(quiet-since, left))
	}
}

// arrivalListener counts every connection it accepts while the server drains:
// the gRPC front's arrivals (gRPC clients keep one connection and only dial again
// after the GOAWAY or a reconnect, which is what a lagging route sends here).
type arrivalListener struct {
	net.Listener
	draining *atomic.Bool
	arrivals *drainArrivals
}

func (l arrivalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.draining.Load() {
		l.arrivals.arrived()
	}
	return c, err
}
