package server

import (
	"net/http"

	"github.com/tideserve/tide/internal/apidocs"
	"github.com/tideserve/tide/internal/serving"
)

// registerAPIDocs mounts GET /openapi.json and the /docs page unless turned off.
func (s *Server) registerAPIDocs() {
	if s.opts.DisableDocs {
		return
	}
	s.mux.HandleFunc("GET /openapi.json", s.openAPI)
	apidocs.Register(s.mux)
}

// openAPI answers the OpenAPI document of what is served now: it is built per
// request (models come and go with reloads), from each model's newest ready
// version. Models not ready are left out until they are.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	srv := apidocs.Server{Version: s.opts.Version, APIKeys: s.inferenceKeys() != nil}
	if v, err := s.seedVersion(r.Context()); err == nil {
		srv.PredictModel = v.Name
	}
	var models []apidocs.Model
	for _, name := range s.repo.Names() {
		v, err := s.repo.Get(name, "")
		if err != nil {
			continue
		}
		m, err := v.Acquire()
		if err != nil {
			continue
		}
		e, _ := s.repo.Entry(name)
		dm := apidocs.Model{Name: name, Versions: e.VersionNames(), Meta: m.Meta, Monitored: m.Monitor() != nil}
		if f, err := m.Features(); err == nil && f != nil {
			for i, n := range f.Names {
				kind := apidocs.Number
				if f.Columns {
					switch f.Kinds[i] {
					case serving.ColumnText:
						kind = apidocs.Text
					case serving.ColumnAny:
						kind = apidocs.Any
					}
				}
				dm.Features = append(dm.Features, apidocs.Feature{Name: n, Kind: kind})
			}
		}
		m.Release()
		models = append(models, dm)
	}
	doc, err := apidocs.Document(srv, models)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, doc)
}
