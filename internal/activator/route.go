package activator

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"

	"github.com/tideserve/tide/internal/rollout"
)

// route.go makes the activator a router: besides the stable backend (Config.Target)
// a route may name a candidate and its share of traffic. The operator sets the
// route over the ops port (PUT /v1/route) at each step of a rollout; with no route
// the activator is what it always was, a holding proxy to one backend.

// liveRoute is a Route with its candidate URL parsed, swapped atomically.
type liveRoute struct {
	rollout.Route
	candidate *url.URL
}

// backend names which version answered.
type backend string

const (
	stableBackend    backend = "stable"
	candidateBackend backend = "candidate"
)

// pick says which version answers a request and which, if any, gets a mirror of
// it to compare. In split mode a request the candidate answers is mirrored to
// the stable version (so agreement is measured on live traffic); in shadow mode
// the candidate only ever gets mirrors.
func (rt *liveRoute) pick(r *http.Request) (primary backend, mirror backend) {
	if rt == nil || rt.candidate == nil || rt.Weight <= 0 {
		return stableBackend, ""
	}
	if bucket(r, rt.Route) >= int(rt.Weight) {
		return stableBackend, ""
	}
	if rt.Shadow {
		return stableBackend, candidateBackend
	}
	return candidateBackend, stableBackend
}

// bucket is the request's place in 0..99. A sticky key hashes to a fixed place,
// so one customer stays on one version, and as the weight grows customers only
// move from the stable version to the candidate, never back.
func bucket(r *http.Request, rt rollout.Route) int {
	key := ""
	if rt.StickyHeader != "" {
		key = r.Header.Get(rt.StickyHeader)
	}
	if key == "" && rt.StickyCookie != "" {
		if c, err := r.Cookie(rt.StickyCookie); err == nil {
			key = c.Value
		}
	}
	if key == "" {
		return rand.IntN(100)
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % 100)
}
