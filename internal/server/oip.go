package server

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tracing"
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
}

func (s *Server) oipServerMetadata(w http.ResponseWriter, r *http.Request) {
	ext := restExtensions
	if s.opts.DisableRepositoryAPI {
		ext = ext[1:]
	}
	writeJSON(w, http.StatusOK, oip.ServerMetadata{Name: "tide", Version: s.opts.Version, Extensions: ext})
}

// restExtensions are the OIP extensions the REST front end implements; the first,
// the repository extension, can be turned off.
var restExtensions = []string{"model_repository", oip.ExtensionBinaryTensorData}

// metricLabel is the model label for request metrics: the name if the model
// exists, else "" so that made-up names cannot grow the series without bound.
func (s *Server) metricLabel(name string) string {
	if s.repo.Has(name) {
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
	writeJSON(w, http.StatusOK, oip.NewModelMetadata(v.Name, e.VersionNames(), md))
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
	s.record(r.Context(), s.metricLabel(name), protoOIP, status, start)
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
	decoding := phase(r.Context(), tracing.SpanDecode)
	body, buf, err := s.readBody(w, r)
	if err != nil {
		endPhase(decoding, err)
		return s.fail(w, r, err)
	}
	defer releaseBody(buf)
	req, bin, err := decodeOIPInferRequest(r, body)
	endPhase(decoding, err)
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
	id := req.ID
	if id == "" {
		id = requestIDOf(w) // the answer names its request even when the client did not
	}
	outs, mon, err := s.infer(ctx, v, id, req.Inputs, requested)
	if err != nil {
		return s.fail(w, r, err)
	}
	encoding := phase(r.Context(), tracing.SpanEncode)
	defer encoding.End()
	out := getOut()
	resp := &oip.InferResponse{ModelName: v.Name, ModelVersion: v.Version, ID: id, Outputs: outs}
	if bin.Any() {
		var headerLen int
		*out, headerLen = oip.AppendBinaryInferResponse(*out, resp, bin)
		writeBinaryInferResponse(w, *out, headerLen)
	} else {
		*out = oip.AppendInferResponse(*out, resp)
		writeJSONBytes(w, http.StatusOK, *out)
	}
	contentType := "application/json"
	if bin.Any() || r.Header.Get(oip.HeaderContentLength) != "" {
		contentType = "application/octet-stream"
	}
	logPayload(mon, id, v.Name, v.Version, "infer", contentType, body, *out)
	putOut(out)
	return http.StatusOK
}

// binaryDataMarker appears in every request that uses the binary tensor data
// extension without a binary part (binary_data, binary_data_output); a request
// without it takes the plain JSON decoder.
var binaryDataMarker = []byte(`"binary_data`)

// decodeOIPInferRequest decodes an infer body: a JSON header plus binary tensor data
// when Inference-Header-Content-Length is set, JSON otherwise.
func decodeOIPInferRequest(r *http.Request, body []byte) (*oip.InferRequest, oip.BinaryOutputs, error) {
	h := r.Header.Get(oip.HeaderContentLength)
	if h == "" && !bytes.Contains(body, binaryDataMarker) {
		req, err := oip.DecodeInferRequest(body)
		return req, oip.BinaryOutputs{}, err
	}
	headerLen := -1
	if h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 {
			return nil, oip.BinaryOutputs{}, &oip.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s header %q: want the JSON header's length in bytes", oip.HeaderContentLength, h)}
		}
		headerLen = n
	}
	return oip.DecodeBinaryInferRequest(body, headerLen)
}

// writeBinaryInferResponse sends a JSON header followed by binary tensor data.
func writeBinaryInferResponse(w http.ResponseWriter, body []byte, headerLen int) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(oip.HeaderContentLength, strconv.Itoa(headerLen))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
