package activator

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tideserve/tide/internal/rollout"
)

// control.go is the route's API on the ops port. Reading the route and its
// measurement is open, like /metrics; changing it needs the control token
// (Config.ControlToken, a Secret the operator creates), and without one the
// route cannot be changed at all.

func (p *Proxy) registerControl(ops *http.ServeMux) {
	ops.HandleFunc("GET "+rollout.RoutePath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p.Report())
	})
	ops.HandleFunc("PUT "+rollout.RoutePath, p.putRoute)
}

func (p *Proxy) putRoute(w http.ResponseWriter, r *http.Request) {
	if p.cfg.ControlToken == "" {
		writeError(w, http.StatusForbidden, "route control is off: start the activator with --control-token-file")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(p.cfg.ControlToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tide-router"`)
		writeError(w, http.StatusUnauthorized, "a valid control token is required to set the route")
		return
	}
	rt, cand, err := rollout.ParseRoute(http.MaxBytesReader(w, r.Body, rollout.MaxRouteBytes))
	if err != nil {
		code := http.StatusUnprocessableEntity
		var syntax rollout.RouteSyntaxError
		switch {
		case errors.Is(err, rollout.ErrRouteTooLarge):
			code = http.StatusRequestEntityTooLarge
		case errors.As(err, &syntax):
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	p.SetRoute(rt, cand)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(p.Report())
}
