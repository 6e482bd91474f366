package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tracing"
)

// KServe's v1 protocol, for clients written against KServe's sklearn server:
// POST /v1/models/{name}:predict with {"instances": [[f1, f2], ...]} (or instances
// as feature objects) answers {"predictions": [...]}; GET /v1/models/{name} says
// whether the model is ready.

const protoV1 = "kserve-v1"

func (s *Server) registerKServeV1() {
	s.mux.HandleFunc("GET /v1/models", s.v1List)
	// The verb is part of the last path segment ("name:predict"), which a pattern
	// wildcard cannot split, so one handler takes the segment apart.
	s.mux.HandleFunc("GET /v1/models/{target}", s.v1Status)
	s.mux.HandleFunc("POST /v1/models/{target}", s.v1Predict)
}

func (s *Server) v1List(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]string{"models": s.repo.Names()})
}

func (s *Server) v1Status(w http.ResponseWriter, r *http.Request) {
	v, err := s.repo.Get(r.PathValue("target"), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, _ := v.Status()
	ready := st == repository.Ready && !s.draining.Load()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"name": v.Name, "ready": ready})
}

func (s *Server) v1Predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, verb, ok := strings.Cut(r.PathValue("target"), ":")
	if !ok || verb != "predict" {
		discard(r)
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("no route for POST %s (want /v1/models/NAME:predict)", r.URL.Path))
		return
	}
	status := s.v1PredictStatus(w, r, name)
	s.record(r.Context(), s.metricLabel(name), protoV1, status, start)
}

func (s *Server) v1PredictStatus(w http.ResponseWriter, r *http.Request, name string) int {
	v, err := s.repo.Get(name, "")
	if err != nil {
		discard(r)
		return s.fail(w, r, err)
	}
	// One held model for the whole request: its metadata, features and run.
	m, err := v.Acquire()
	if err != nil {
		discard(r)
		return s.fail(w, r, err)
	}
	defer m.Release()
	md := m.Meta
	sm, _ := m.Features() // nil when the model has no feature names: objects are then refused
	matrix := len(md.Inputs) == 1 && len(md.Inputs[0].Shape) == 2 && md.Inputs[0].Shape[1] >= 1
	if !matrix && (sm == nil || !sm.Columns) {
		discard(r)
		return s.fail(w, r, model.InvalidInputf("model %s does not take rows of features; use POST /v2/models/%s/infer", name, name))
	}
	decoding := phase(r.Context(), tracing.SpanDecode)
	body, buf, err := s.readBody(w, r)
	if err != nil {
		endPhase(decoding, err)
		return s.fail(w, r, err)
	}
	defer releaseBody(buf)
	var table *featureTable
	if matrix {
		table = newFeatureTable(sm, md.Inputs[0].Name, int(md.Inputs[0].Shape[1]), 4)
	} else {
		table = newFeatureTable(sm, "", len(sm.Names), 4)
	}
	err = decodeInstances(body, table)
	endPhase(decoding, err)
	if err != nil {
		return s.fail(w, r, err)
	}
	ctx, cancel, err := withRequestDeadline(r)
	if err != nil {
		return s.fail(w, r, err)
	}
	defer cancel()
	id := requestIDOf(w)
	outs, err := m.Infer(ctx, id, table.tensors(), nil)
	if err != nil {
		return s.fail(w, r, err)
	}
	encoding := phase(r.Context(), tracing.SpanEncode)
	defer encoding.End()
	out := getOut()
	*out = append(*out, `{"predictions":`...)
	*out = appendPyValues(*out, outs[0])
	*out = append(*out, '}')
	writeJSONBytes(w, http.StatusOK, *out)
	logPayload(m.Monitor(), id, v.Name, v.Version, "v1", "application/json", body, *out)
	putOut(out)
	table.release()
	return http.StatusOK
}

// decodeInstances reads {"instances": [...]} into t, where each instance is a
// list of one value per column or, for models with feature names, an object
// of features.
func decodeInstances(body []byte, t *featureTable) error {
	sc := jsonwire.NewScanner(body)
	more, err := sc.ObjectStart()
	if err != nil {
		return seedScanErr(err)
	}
	found := false
	for more {
		key, err := sc.Key()
		if err != nil {
			return seedScanErr(err)
		}
		if string(key) != "instances" {
			if err := sc.Skip(); err != nil {
				return seedScanErr(err)
			}
		} else {
			found = true
			t.reset() // a repeated key: the last one counts, as JSON decoders do
			if err := decodeInstanceList(sc, t); err != nil {
				return err
			}
		}
		if more, err = sc.More('}'); err != nil {
			return seedScanErr(err)
		}
	}
	if err := sc.End(); err != nil {
		return seedScanErr(err)
	}
	if !found {
		return model.InvalidInputf(`request has no "instances"`)
	}
	if t.rows == 0 {
		return model.InvalidInputf(`"instances" is empty`)
	}
	return nil
}

func decodeInstanceList(sc *jsonwire.Scanner, t *featureTable) error {
	more, err := sc.ArrayStart()
	if err != nil {
		return seedScanErrAt("instances", err)
	}
	width := t.width
	for more {
		r := t.addRow()
		where := fmt.Sprintf("instances[%d]", r)
		switch sc.Peek() {
		case '{':
			if t.sm == nil {
				return model.InvalidInputf("%s: this model has no feature names; send a list of %d numbers", where, width)
			}
			if err := decodeSeedObject(sc, t, r, r); err != nil {
				return err
			}
		default:
			m, err := sc.ArrayStart()
			if err != nil {
				return seedScanErrAt(where, err)
			}
			n := 0
			for m {
				if n < width {
					err = t.read(sc, r, n)
				} else {
					err = sc.Skip()
				}
				if err != nil {
					return seedScanErrAt(where, err)
				}
				n++
				if m, err = sc.More(']'); err != nil {
					return seedScanErrAt(where, err)
				}
			}
			if n != width {
				return model.InvalidInputf("%s has %d values, the model takes %d", where, n, width)
			}
		}
		if more, err = sc.More(']'); err != nil {
			return seedScanErrAt("instances", err)
		}
	}
	return nil
}
