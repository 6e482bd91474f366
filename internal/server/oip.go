package server

import (
	"net/http"
	"time"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/repository"
)

const protoOIP = "oip-rest"

// registerOIP mounts the Open Inference Protocol v2 REST endpoints.
func (s *Server) registerOIP() {
	s.mux.HandleFunc("GET /v2", s.oipServerMetadata)
	s.mux.HandleFunc("GET /v2/models/{name}", s.oipModelMetadata)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.oipModelMetadata)
	s.mux.HandleFunc("GET /v2/models/{name}/ready", s.oipModelReady)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.oipModelReady)
	s.mux.HandleFunc("POST /v2/models/{name}/infer", s.oipInfer)
	s.mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.oipInfer)
	s.mux.HandleFunc("POST /v2/repository/index", s.oipRepositoryIndex)
}

func (s *Server) oipServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, oip.ServerMetadata{Name: "tide", Version: s.opts.Version,
		Extensions: []string{"model_repository"}})
}

// metricLabel is the model label for request metrics: the name if the model
// exists, else "" so that made-up names cannot grow the series without bound.
func (s *Server) metricLabel(name string) string {
	if _, ok := s.repo.Entry(name); ok {
		return name
	}
	return ""
}

func (s *Server) oipModelMetadata(w http.ResponseWriter, r *http.Request) {
	v, err := s.repo.Get(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, md, err := v.Model()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, _ := s.repo.Entry(v.Name)
	versions := make([]string, len(e.Versions))
	for i, ver := range e.Versions {
		versions[i] = ver.Version
	}
	writeJSON(w, http.StatusOK, oip.NewModelMetadata(v.Name, versions, md))
}

func (s *Server) oipModelReady(w http.ResponseWriter, r *http.Request) {
	v, err := s.repo.Get(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	}{Name: v.Name}
	status := http.StatusServiceUnavailable
	if st, _ := v.Status(); st == repository.Ready && !s.draining.Load() {
		body.Ready, status = true, http.StatusOK
	}
	writeJSON(w, status, body)
}

func (s *Server) oipInfer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("name")
	status := s.oipInferStatus(w, r, name, r.PathValue("version"))
	s.record(s.metricLabel(name), protoOIP, status, start)
}

func (s *Server) oipInferStatus(w http.ResponseWriter, r *http.Request, name, version string) int {
	v, err := s.repo.Get(name, version)
	if err == nil {
		_, _, err = v.Model() // not ready: say so before reading the body
	}
	if err != nil {
		discard(r)
		return s.fail(w, r, err)
	}
	body, release, err := s.readBody(w, r)
	if err != nil {
		return s.fail(w, r, err)
	}
	defer release()
	req, err := oip.DecodeInferRequest(body)
	if err != nil {
		return s.fail(w, r, err)
	}
	var requested []string
	for _, o := range req.Outputs {
		requested = append(requested, o.Name)
	}
	ctx, cancel, err := withRequestDeadline(r)
	if err != nil {
		return s.fail(w, r, err)
	}
	defer cancel()
	outs, err := s.infer(ctx, v, req.Inputs, requested)
	if err != nil {
		return s.fail(w, r, err)
	}
	out := getOut()
	*out = oip.AppendInferResponse(*out, &oip.InferResponse{
		ModelName: v.Name, ModelVersion: v.Version, ID: req.ID, Outputs: outs})
	writeJSONBytes(w, http.StatusOK, *out)
	putOut(out)
	return http.StatusOK
}

func (s *Server) oipRepositoryIndex(w http.ResponseWriter, r *http.Request) {
	discard(r)
	writeJSON(w, http.StatusOK, s.repo.Index())
}
