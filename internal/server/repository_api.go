package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/tideserve/tide/internal/oip"
)

// The OIP model repository extension over REST: list, load and unload models.
// It can be turned off (Options.DisableRepositoryAPI) or protected with API keys
// (Options.ManagementKeys), sent as "Authorization: Bearer KEY" or "X-API-Key: KEY".
// The index is readable by default; load and unload (model control) answer 403
// unless management keys are configured or Options.ModelControl turns them on.

const protoRepository = "repository"

func (s *Server) registerRepositoryAPI() {
	if s.opts.DisableRepositoryAPI {
		return
	}
	s.mux.HandleFunc("POST /v2/repository/index", s.managed(s.repositoryIndex))
	control := s.mux
	if s.management != nil {
		// Load and unload live on the management port alone; here they are no
		// route, with a line that says where they went.
		control = s.management
		s.management.HandleFunc("POST /v2/repository/index", s.managed(s.repositoryIndex))
		s.mux.HandleFunc("POST /v2/repository/models/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
			discard(r)
			s.writeError(w, http.StatusNotFound, errControlElsewhere)
		})
	}
	control.HandleFunc("POST /v2/repository/models/{name}/load", s.managed(s.controlled(s.repositoryLoad)))
	control.HandleFunc("POST /v2/repository/models/{name}/unload", s.managed(s.controlled(s.repositoryUnload)))
}

// errControlElsewhere answers load and unload on the main ports when they are
// served on the management address.
const errControlElsewhere = "model load and unload are served on this server's management port (--management-addr), not here"

// serveManagement is the management listener's handler: the repository API, with
// the main port's path hygiene and JSON errors, and nothing else.
func (s *Server) serveManagement(w http.ResponseWriter, r *http.Request) {
	if s.refuseUncleanPath(w, r) {
		return
	}
	if _, pattern := s.management.Handler(r); pattern == "" {
		discard(r)
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s on the management port (it serves /v2/repository/...)", r.Method, echoPath(r.URL.Path)))
		return
	}
	s.management.ServeHTTP(w, r)
}

// ManagementAddr is the bound management address once Serve listens on it.
func (s *Server) ManagementAddr() string {
	a, _ := s.managementAddr.Load().(string)
	return a
}

// modelControlOff answers load and unload while model control is off.
var modelControlOff = oip.Errorf(http.StatusForbidden, "model control is off on this server: load and unload need "+
	"management keys (--management-key-file or TIDE_MANAGEMENT_KEYS) or --model-control")

// modelControlOn: load and unload are allowed, to management key holders when keys
// are configured, else (ModelControl) to whoever may call inference.
func (s *Server) modelControlOn() bool {
	return len(s.opts.ManagementKeys) > 0 || s.opts.ModelControl
}

// controlled refuses h with 403 while model control is off.
func (s *Server) controlled(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.modelControlOn() {
			discard(r)
			s.record(r.Context(), "", protoRepository, s.fail(w, r, modelControlOff), time.Now())
			return
		}
		h(w, r)
	}
}

// managed requires a management key when any are configured, else an API key when
// those are (as the gRPC repository calls do), checked as in auth.go.
func (s *Server) managed(h http.HandlerFunc) http.HandlerFunc {
	keys := newKeySet(s.opts.ManagementKeys)
	if keys == nil {
		keys = newKeySet(s.opts.APIKeys)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !keys.allows(presentedKey(r.Header.Get("X-API-Key"), r.Header.Get("Authorization"))) {
			discard(r)
			w.Header().Set("WWW-Authenticate", `Bearer realm="tide-management"`)
			s.writeError(w, http.StatusUnauthorized, "this endpoint needs a management API key (Authorization: Bearer KEY or X-API-Key: KEY)")
			return
		}
		h(w, r)
	}
}

func (s *Server) repositoryIndex(w http.ResponseWriter, r *http.Request) {
	discard(r)
	writeJSON(w, http.StatusOK, s.repo.Index())
}

func (s *Server) repositoryLoad(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	discard(r)
	name := r.PathValue("name")
	if err := s.repo.LoadModel(r.Context(), name); err != nil {
		s.record(r.Context(), "", protoRepository, s.fail(w, r, err), start)
		return
	}
	s.log.Info("model loaded through the repository API", "model", name)
	writeJSONBytes(w, http.StatusOK, []byte(`{}`))
	s.record(r.Context(), "", protoRepository, http.StatusOK, start)
}

func (s *Server) repositoryUnload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	discard(r)
	name := r.PathValue("name")
	if err := s.repo.UnloadModel(name); err != nil {
		s.record(r.Context(), "", protoRepository, s.fail(w, r, err), start)
		return
	}
	s.log.Info("model unloaded through the repository API", "model", name)
	writeJSONBytes(w, http.StatusOK, []byte(`{}`))
	s.record(r.Context(), "", protoRepository, http.StatusOK, start)
}
