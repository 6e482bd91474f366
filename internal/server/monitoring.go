package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/repository"
)

// Model-quality monitoring over REST: GET .../monitoring shows a model's drift
// and rolling quality as JSON (what the tide_feature_drift family exports), and
// POST .../feedback takes ground truth for earlier predictions by request id.
// Both exist for models with monitoring on (a profile beside the model, or a
// monitoring section in its config); both take the inference keys, as every
// /v2/models route does.

func (s *Server) registerMonitoring() {
	s.mux.HandleFunc("GET /v2/models/{name}/monitoring", s.monitoringReport)
	s.mux.HandleFunc("GET /v2/models/{name}/versions/{version}/monitoring", s.monitoringReport)
	s.mux.HandleFunc("POST /v2/models/{name}/feedback", s.feedback)
}

// monitoringAnswer is GET .../monitoring's body.
type monitoringAnswer struct {
	Model    string              `json:"model"`
	Versions []versionMonitoring `json:"versions"`
	Feedback *feedbackState      `json:"feedback,omitempty"`
}

type versionMonitoring struct {
	Version      string                 `json:"version"`
	Profile      bool                   `json:"profile"`
	ProfileError string                 `json:"profile_error,omitempty"`
	Prediction   string                 `json:"prediction,omitempty"`
	Drift        *monitor.DriftReport   `json:"drift,omitempty"`
	Quality      *monitor.QualityReport `json:"quality,omitempty"`
}

type feedbackState struct {
	KeptRows int `json:"kept_rows"`
}

func notMonitored(name string) error {
	return fmt.Errorf("%w: model %s is not monitored (put a profile.json from `tide profile` beside it, or a monitoring section in its config)",
		repository.ErrNotFound, name)
}

func (s *Server) monitoringReport(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	v, err := s.repo.Get(name, version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans := monitoringAnswer{Model: v.Name, Versions: []versionMonitoring{}}
	var quality []monitor.QualityReport
	if fb, ok := s.monitoring.Feedback(v.Name); ok {
		quality = fb.Quality()
		ans.Feedback = &feedbackState{KeptRows: fb.Kept()}
	}
	for _, m := range s.monitoring.Live() {
		if m.Model != v.Name || (version != "" && m.Version != v.Version) {
			continue
		}
		vm := versionMonitoring{Version: m.Version, Profile: m.Profile != nil, ProfileError: m.ProfileError, Drift: m.Drift()}
		if o := m.Outcome(); o != nil {
			vm.Prediction = o.Output + " (" + o.Kind + ")"
		}
		for i := range quality {
			if quality[i].Version == m.Version {
				vm.Quality = &quality[i]
			}
		}
		ans.Versions = append(ans.Versions, vm)
	}
	if len(ans.Versions) == 0 {
		s.fail(w, r, notMonitored(v.Name))
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// feedbackAnswer is POST .../feedback's body: one result per item, in order,
// and the counts of each result.
type feedbackAnswer struct {
	Results []monitor.ItemResult `json:"results"`
	Counts  map[string]int       `json:"counts"`
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := s.repo.Get(name, "")
	if err != nil {
		discard(r)
		s.fail(w, r, err)
		return
	}
	fb, ok := s.monitoring.Feedback(v.Name)
	if !ok {
		discard(r)
		s.fail(w, r, notMonitored(v.Name))
		return
	}
	body, buf, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer releaseBody(buf)
	items, err := monitor.DecodeFeedback(body)
	if err != nil {
		var tooMany *monitor.TooManyError
		status := http.StatusBadRequest
		if errors.As(err, &tooMany) {
			status = http.StatusRequestEntityTooLarge
		}
		s.writeError(w, status, err.Error())
		return
	}
	ans := feedbackAnswer{Results: fb.Apply(items), Counts: map[string]int{}}
	if r.Header.Get(headerFeedbackForwarded) == "" {
		// The client's own request: ask the other replicas about what this
		// one did not make, and count each item once, here.
		if s.peers != nil {
			s.peers.resolve(r, v.Name, items, ans.Results)
		}
		fb.Record(ans.Results)
	}
	for _, res := range ans.Results {
		ans.Counts[res.Status]++
	}
	writeJSON(w, http.StatusOK, ans)
}

// logPayload sends a sampled request and its answer to the payload log. The
// bodies are copied: the caller's buffers are pooled.
func logPayload(mon *monitor.Monitor, id, model, version, endpoint, contentType string, req, resp []byte) {
	if mon == nil || !mon.SamplePayload() {
		return
	}
	mon.LogPayload(monitor.Payload{ID: id, Model: model, Version: version, Endpoint: endpoint, Time: time.Now(),
		Request: append([]byte(nil), req...), Response: append([]byte(nil), resp...), ContentType: contentType})
}
