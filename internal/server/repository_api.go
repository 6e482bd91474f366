package server

import (
	"net/http"
	"time"
)

// The OIP model repository extension over REST: list, load and unload models.
// It can be turned off (Options.DisableRepositoryAPI) or protected with API keys
// (Options.ManagementKeys), sent as "Authorization: Bearer KEY" or "X-API-Key: KEY".

const protoRepository = "repository"

func (s *Server) registerRepositoryAPI() {
	if s.opts.DisableRepositoryAPI {
		return
	}
	s.mux.HandleFunc("POST /v2/repository/index", s.managed(s.repositoryIndex))
	s.mux.HandleFunc("POST /v2/repository/models/{name}/load", s.managed(s.repositoryLoad))
	s.mux.HandleFunc("POST /v2/repository/models/{name}/unload", s.managed(s.repositoryUnload))
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
		s.record("", protoRepository, s.fail(w, r, err), start)
		return
	}
	s.log.Info("model loaded through the repository API", "model", name)
	writeJSONBytes(w, http.StatusOK, []byte(`{}`))
	s.record("", protoRepository, http.StatusOK, start)
}

func (s *Server) repositoryUnload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	discard(r)
	name := r.PathValue("name")
	if err := s.repo.UnloadModel(name); err != nil {
		s.record("", protoRepository, s.fail(w, r, err), start)
		return
	}
	s.log.Info("model unloaded through the repository API", "model", name)
	writeJSONBytes(w, http.StatusOK, []byte(`{}`))
	s.record("", protoRepository, http.StatusOK, start)
}
