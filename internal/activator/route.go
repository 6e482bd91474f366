package activator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// route.go makes the activator a router: besides the stable backend (Config.Target)
// a route may name a candidate and its share of traffic. The operator sets the
// route over the ops port (PUT /v1/route) at each step of a rollout; with no route
// the activator is what it always was, a holding proxy to one backend.

// Route is where traffic goes. The zero Route sends everything to the stable backend.
type Route struct {
	// ID names the route; a new ID starts a new measurement (the operator's rollout
	// step), the same ID again keeps it.
	ID string `json:"id"`
	// Candidate is the candidate version's base URL; empty: stable only.
	Candidate string `json:"candidate,omitempty"`
	// Weight is the candidate's share of requests in percent (0..100). In shadow
	// mode it is the share mirrored to the candidate.
	Weight int32 `json:"weight"`
	// Shadow answers every request from the stable backend and mirrors Weight
	// percent of them to the candidate, whose answers are only compared.
	Shadow bool `json:"shadow,omitempty"`
	// StickyHeader and StickyCookie name a request header or cookie whose value
	// picks the version (the same value, the same version); without either, or
	// when a request carries neither, the pick is random.
	StickyHeader string `json:"stickyHeader,omitempty"`
	StickyCookie string `json:"stickyCookie,omitempty"`
	// Tolerance is the relative difference within which two regressors' values agree.
	Tolerance float64 `json:"tolerance,omitempty"`
}

// maxRouteBytes bounds a PUT /v1/route body.
const maxRouteBytes = 64 << 10

// ParseRoute reads and checks a route document (a PUT /v1/route body).
func ParseRoute(r io.Reader) (Route, *url.URL, error) {
	var rt Route
	raw, err := io.ReadAll(io.LimitReader(r, maxRouteBytes+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || len(raw) > maxRouteBytes {
		return Route{}, nil, ErrRouteTooLarge
	}
	if err != nil {
		return Route{}, nil, fmt.Errorf("route is not readable: %s", oneLine(err.Error()))
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&rt); err != nil {
		return Route{}, nil, fmt.Errorf("route is not a JSON route document: %s", oneLine(err.Error()))
	}
	if d.More() {
		return Route{}, nil, errors.New("route: one JSON document expected")
	}
	if rt.ID == "" || len(rt.ID) > 253 {
		return Route{}, nil, errors.New("route.id must be 1 to 253 characters")
	}
	if rt.Weight < 0 || rt.Weight > 100 {
		return Route{}, nil, fmt.Errorf("route.weight %d is not a percentage (0..100)", rt.Weight)
	}
	if rt.Tolerance < 0 || rt.Tolerance != rt.Tolerance || rt.Tolerance > 1 {
		return Route{}, nil, errors.New("route.tolerance must be between 0 and 1")
	}
	for _, h := range []string{rt.StickyHeader, rt.StickyCookie} {
		if h != "" && (len(h) > 256 || !httpguts.ValidHeaderFieldName(h)) {
			return Route{}, nil, fmt.Errorf("route: %q is not a valid header or cookie name", h)
		}
	}
	var cand *url.URL
	if rt.Candidate != "" {
		u, err := url.Parse(rt.Candidate)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(rt.Candidate) > 2048 {
			return Route{}, nil, errors.New("route.candidate must be an http:// or https:// URL with a host")
		}
		cand = u
	} else if rt.Weight != 0 {
		return Route{}, nil, errors.New("route.weight needs route.candidate")
	}
	return rt, cand, nil
}

// ErrRouteTooLarge: the route document is over 64 KiB.
var ErrRouteTooLarge = fmt.Errorf("route document larger than %d bytes", maxRouteBytes)

// liveRoute is a Route with its candidate URL parsed, swapped atomically.
type liveRoute struct {
	Route
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
func bucket(r *http.Request, rt Route) int {
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

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
