package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/serving"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tracing"
)

// The tutorial's contract, kept byte for byte: POST /predict with
// {"feature1": 0.5, "feature2": -1.2} answers {"prediction":[0]}; a JSON array of
// such objects is a batch and answers one prediction per object. Values are
// encoded as Python's json.dumps encodes pred.tolist().

const protoSeed = "predict"

func (s *Server) registerSeed() {
	s.mux.HandleFunc("POST /predict", s.seedPredict)
}

// seedVersion picks the model /predict serves: the one a Local request names,
// else the configured default, else the only one.
func (s *Server) seedVersion(ctx context.Context) (*repository.Version, error) {
	name := localModel(ctx)
	if name == "" {
		name = s.DefaultModel()
	}
	if name == "" {
		return nil, fmt.Errorf("%w: /predict needs a default model when several are served (set --default-model); models: %s",
			repository.ErrNotFound, strings.Join(s.repo.Names(), ", "))
	}
	return s.repo.Get(name, "")
}

// DefaultModel is the model a request that names none is for: --default-model,
// else the only model served; "" when there are several and no default.
func (s *Server) DefaultModel() string {
	if s.opts.DefaultModel != "" {
		return s.opts.DefaultModel
	}
	return s.repo.Only()
}

func (s *Server) seedPredict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, status := s.seedPredictStatus(w, r)
	s.record(r.Context(), name, protoSeed, status, start)
}

func (s *Server) seedPredictStatus(w http.ResponseWriter, r *http.Request) (string, int) {
	v, err := s.seedVersion(r.Context())
	if err != nil {
		discard(r)
		return "", s.fail(w, r, err)
	}
	// One held model for the whole request: its feature index and its run.
	m, err := v.Acquire()
	if err != nil {
		discard(r)
		return v.Name, s.fail(w, r, err)
	}
	defer m.Release()
	sm, err := m.Features()
	if err != nil {
		discard(r)
		return v.Name, s.fail(w, r, err)
	}
	decoding := phase(r.Context(), tracing.SpanDecode)
	body, buf, err := s.readBody(w, r)
	if err != nil {
		endPhase(decoding, err)
		return v.Name, s.fail(w, r, err)
	}
	defer releaseBody(buf)
	table, err := decodeSeedRows(body, sm)
	endPhase(decoding, err)
	if err != nil {
		return v.Name, s.fail(w, r, err)
	}
	ctx, cancel, err := withRequestDeadline(r)
	if err != nil {
		return v.Name, s.fail(w, r, err)
	}
	defer cancel()
	id := requestIDOf(w)
	outs, err := m.Infer(ctx, id, table.tensors(), nil)
	if err != nil {
		return v.Name, s.fail(w, r, err)
	}
	encoding := phase(r.Context(), tracing.SpanEncode)
	defer encoding.End()
	out := getOut()
	*out = append(*out, `{"prediction":`...)
	*out = appendPyValues(*out, outs[0])
	*out = append(*out, '}')
	writeJSONBytes(w, http.StatusOK, *out)
	logPayload(m.Monitor(), id, v.Name, v.Version, "predict", "application/json", body, *out)
	putOut(out)
	table.release()
	return v.Name, http.StatusOK
}

// decodeSeedRows reads one feature object or an array of them into the
// model's inputs, in the model's feature order. A single object and a batch of
// one both answer a one-element list: pred.tolist() is a list either way.
func decodeSeedRows(body []byte, sm *serving.Features) (*featureTable, error) {
	sc := jsonwire.NewScanner(body)
	nf := len(sm.Names)
	var t *featureTable
	switch sc.Peek() {
	case '{':
		t = newFeatureTable(sm, "", nf, 1)
		if err := decodeSeedObject(sc, t, t.addRow(), -1); err != nil {
			return nil, err
		}
	case '[':
		more, err := sc.ArrayStart()
		if err != nil {
			return nil, seedScanErr(err)
		}
		if !more {
			return nil, model.InvalidInputf("the request is an empty list: send one feature object or a list of them")
		}
		t = newFeatureTable(sm, "", nf, 4)
		for more {
			r := t.addRow()
			if err := decodeSeedObject(sc, t, r, r); err != nil {
				return nil, err
			}
			if more, err = sc.More(']'); err != nil {
				return nil, seedScanErr(err)
			}
		}
	default:
		if sc.Kind() == "end of input" {
			return nil, &oip.Error{Status: http.StatusBadRequest, Msg: "empty request body: send a JSON object of features"}
		}
		if _, err := sc.ObjectStart(); err != nil {
			return nil, seedScanErr(err)
		}
	}
	if err := sc.End(); err != nil {
		return nil, seedScanErr(err)
	}
	return t, nil
}

// decodeSeedObject fills row r of t from one {"feature": value, ...} object.
// Missing and unknown features are 422 with their names, as a validating API
// would answer. rowIndex names the row in messages (-1: the request).
func decodeSeedObject(sc *jsonwire.Scanner, t *featureTable, r, rowIndex int) error {
	sm := t.sm
	where := "request"
	if rowIndex >= 0 {
		where = "row " + strconv.Itoa(rowIndex)
	}
	more, err := sc.ObjectStart()
	if err != nil {
		return seedScanErrAt(where, err)
	}
	var seenSmall uint64 // bit set for the first 64 features; a map beyond that
	var seenBig map[int]bool
	seen := 0
	var extra []string
	for more {
		key, err := sc.Key()
		if err != nil {
			return seedScanErrAt(where, err)
		}
		i, ok := sm.Index[string(key)]
		if !ok {
			if len(extra) < 16 {
				extra = append(extra, model.ShortName(string(key)))
			}
			if err := sc.Skip(); err != nil {
				return seedScanErrAt(where, err)
			}
		} else {
			if err := t.read(sc, r, i); err != nil {
				return seedScanErrAt(fmt.Sprintf("%s: feature %q", where, key), err)
			}
			if i < 64 {
				if seenSmall&(1<<i) == 0 {
					seenSmall |= 1 << i
					seen++
				}
			} else {
				if seenBig == nil {
					seenBig = map[int]bool{}
				}
				if !seenBig[i] {
					seenBig[i] = true
					seen++
				}
			}
		}
		if more, err = sc.More('}'); err != nil {
			return seedScanErrAt(where, err)
		}
	}
	if seen == len(sm.Names) && len(extra) == 0 {
		return nil
	}
	var problems []string
	if seen < len(sm.Names) {
		var missing []string
		for i, f := range sm.Names {
			if (i < 64 && seenSmall&(1<<i) == 0) || (i >= 64 && !seenBig[i]) {
				missing = append(missing, f)
			}
		}
		problems = append(problems, "missing features: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		problems = append(problems, "unknown features: "+strings.Join(extra, ", "))
	}
	return model.InvalidInputf("%s: %s (the model takes: %s)", where, strings.Join(problems, "; "), strings.Join(sm.Names, ", "))
}

func seedScanErr(err error) error { return seedScanErrAt("request", err) }

func seedScanErrAt(where string, err error) error {
	if _, ok := err.(*jsonwire.TypeError); ok {
		return model.InvalidInputf("%s: %s", where, err.Error())
	}
	return &oip.Error{Status: http.StatusBadRequest, Msg: where + ": " + err.Error()}
}

// appendPyValues encodes a tensor as pred.tolist() would be by json.dumps: a list
// per leading dimension, Python's float repr, true/false, strings.
func appendPyValues(dst []byte, t *tensor.Tensor) []byte {
	if len(t.Shape) <= 1 {
		return appendPyFlat(dst, t, 0, t.Len())
	}
	width := int(tensor.NumElements(t.Shape[1:]))
	dst = append(dst, '[')
	for r := 0; r < int(t.Shape[0]); r++ {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = appendPyFlat(dst, t, r*width, (r+1)*width)
	}
	return append(dst, ']')
}

func appendPyFlat(dst []byte, t *tensor.Tensor, from, to int) []byte {
	switch v := t.Data.(type) {
	case []float64:
		dst = append(dst, '[')
		for i, x := range v[from:to] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonwire.AppendPyFloat(dst, x)
		}
		return append(dst, ']')
	case []float32:
		dst = append(dst, '[')
		for i, x := range v[from:to] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonwire.AppendPyFloat(dst, float64(x))
		}
		return append(dst, ']')
	}
	sub := *t
	sub.Shape = []int64{int64(to - from)}
	sub.Data = sliceData(t.Data, from, to)
	return oip.AppendData(dst, &sub)
}

func sliceData(data any, from, to int) any {
	switch v := data.(type) {
	case []int64:
		return v[from:to]
	case []int32:
		return v[from:to]
	case []bool:
		return v[from:to]
	case [][]byte:
		return v[from:to]
	case []uint8:
		return v[from:to]
	case []int8:
		return v[from:to]
	case []int16:
		return v[from:to]
	case []uint16:
		return v[from:to]
	case []uint32:
		return v[from:to]
	case []uint64:
		return v[from:to]
	}
	return data
}
