package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// route.go is the wire document between the operator, which decides a rollout's
// route, and the router (the activator), which carries it out and measures it:
// PUT RoutePath sets a Route, GET RoutePath answers a Report.

// RoutePath is where a router's route is read (GET) and set (PUT), on its ops port.
const RoutePath = "/v1/route"

// RouteHeader on every answer names the version that gave it while a candidate
// is routed (stable or candidate), so a client or a test can tell them apart.
const RouteHeader = "X-Tide-Route"

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

// MaxRouteBytes bounds a PUT /v1/route body.
const MaxRouteBytes = 64 << 10

// ParseRoute reads and checks a route document (a PUT /v1/route body).
func ParseRoute(r io.Reader) (Route, *url.URL, error) {
	var rt Route
	raw, err := io.ReadAll(io.LimitReader(r, MaxRouteBytes+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || len(raw) > MaxRouteBytes {
		return Route{}, nil, ErrRouteTooLarge
	}
	if err != nil {
		return Route{}, nil, RouteSyntaxError("route is not readable: " + oneLine(err.Error()))
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&rt); err != nil {
		return Route{}, nil, RouteSyntaxError("route is not a JSON route document: " + oneLine(err.Error()))
	}
	if d.More() {
		return Route{}, nil, RouteSyntaxError("route: one JSON document expected")
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

// RouteSyntaxError: the route document could not be read as one JSON route
// (a 400, where a readable but invalid route is a 422).
type RouteSyntaxError string

func (e RouteSyntaxError) Error() string { return string(e) }

// ErrRouteTooLarge: the route document is over 64 KiB.
var ErrRouteTooLarge = fmt.Errorf("route document larger than %d bytes", MaxRouteBytes)

// BackendReport is one version's share of a measurement.
type BackendReport struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// P50 and P99 are seconds, within 1%. The stable version's include its
	// answers to mirrors (split mode), so they are known at a 100% step too.
	P50 float64 `json:"p50Seconds"`
	P99 float64 `json:"p99Seconds"`
}

// MirrorReport counts mirrored requests.
type MirrorReport struct {
	Sent    int64 `json:"sent"`
	Dropped int64 `json:"dropped"` // the mirror queue was full
	Failed  int64 `json:"failed"`  // the mirror could not be sent or answered
}

// AgreementReport is the comparison of the two versions' answers.
type AgreementReport struct {
	Compared int64 `json:"compared"`
	Agreed   int64 `json:"agreed"`
	// Incomparable answers could not be read or did not match in shape.
	Incomparable        int64   `json:"incomparable"`
	MeanProbabilityDiff float64 `json:"meanProbabilityDiff"`
}

// Report is GET /v1/route's answer: the route and what it has seen since it was set.
type Report struct {
	Route     Route           `json:"route"`
	Since     time.Time       `json:"since"`
	Stable    BackendReport   `json:"stable"`
	Candidate BackendReport   `json:"candidate"`
	Agreement AgreementReport `json:"agreement"`
	Mirrors   MirrorReport    `json:"mirrors"`
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
