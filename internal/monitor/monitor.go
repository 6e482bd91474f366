// Package monitor measures model quality in production: drift of each feature
// and of the prediction against a reference profile, ground truth matched to
// kept predictions for rolling accuracy, and sampled payload logging. It counts
// on the request path and computes statistics when they are read (a scrape, a
// GET .../monitoring), so a request pays for a few bin lookups; memory is fixed
// by the profile's bins, the window slots and the feedback store's bounds.
//
// Monitoring never fails a request: whatever does not fit the profile is
// skipped, and a panic inside it is contained.
package monitor

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// Settings are one model's monitoring settings (its config file's monitoring
// section over the server's defaults).
type Settings struct {
	Window  Window
	MinRows int
	// Features bounds how many profiled features are monitored (and exported:
	// each is 6 series per version).
	Features      int
	Feedback      FeedbackConfig
	PayloadSample float64
}

// DefaultSettings are the server's defaults.
var DefaultSettings = Settings{Window: Window{Rows: 1000}, MinRows: 100, Features: 100, Feedback: DefaultFeedback}

// Monitor is one served model version's monitoring, made with its serving
// state and closed with it.
type Monitor struct {
	Model, Version string
	// Profile is the reference (nil: none, or it did not fit: ProfileError).
	Profile      *Profile
	ProfileError string
	Settings     Settings

	drift    *Drift
	outcome  *Outcome
	output   int // the outcome's output index
	feedback *Feedback
	hub      *Hub
	log      *slog.Logger
	seq      uint64 // creation order: a reload's new monitor supersedes the old
}

// DeriveOutcome is what a model's outputs say about its predictions when no
// profile does: an output named predict_proba of [n, k] gives class
// probabilities (classes named by their index), else a floating-point first
// output of [n] or [n, 1] is a regressor's value. Other models have no outcome
// (no feedback without a profile).
func DeriveOutcome(md model.Metadata) *Outcome {
	for _, o := range md.Outputs {
		if o.Name == "predict_proba" && len(o.Shape) == 2 && o.Shape[1] > 0 && o.Shape[1] <= MaxClasses {
			classes := make([]string, o.Shape[1])
			for i := range classes {
				classes[i] = strconv.Itoa(i)
			}
			return &Outcome{Output: o.Name, Kind: Probabilities, Classes: classes}
		}
	}
	if len(md.Outputs) > 0 {
		o := md.Outputs[0]
		oneValue := len(o.Shape) == 1 || (len(o.Shape) == 2 && o.Shape[1] == 1)
		if oneValue && (o.Datatype == tensor.FP64 || o.Datatype == tensor.FP32) {
			return &Outcome{Output: o.Name, Kind: Values}
		}
	}
	return nil
}

// Observe records one successful request: drift counts, and its predictions
// kept under id for feedback.
func (m *Monitor) Observe(id string, inputs, outputs []*tensor.Tensor) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("monitoring panic; the request was answered", "model", m.Model, "version", m.Version, "panic", fmt.Sprint(p))
		}
	}()
	if m.drift != nil {
		m.drift.Observe(inputs, outputs)
	}
	if m.feedback != nil && m.outcome != nil && m.output < len(outputs) && len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		m.feedback.Keep(id, m.Version, m.outcome, outputs[m.output], int(inputs[0].Shape[0]))
	}
}

// SamplePayload draws whether this request's payload is logged.
func (m *Monitor) SamplePayload() bool {
	return m.hub.payloads != nil && m.Settings.PayloadSample > 0 && rand.Float64() < m.Settings.PayloadSample
}

// LogPayload queues a payload for the server's payload log.
func (m *Monitor) LogPayload(p Payload) {
	if m.hub.payloads != nil {
		m.hub.payloads.Log(p)
	}
}

// Drift reports the window's drift (Ready false and no statistics without a
// profile).
func (m *Monitor) Drift() *DriftReport {
	if m.drift == nil {
		return nil
	}
	r := m.drift.Report()
	return &r
}

// Outcome is how predictions are read for feedback (nil: no feedback).
func (m *Monitor) Outcome() *Outcome { return m.outcome }

// Close takes the version out of the exported series.
func (m *Monitor) Close() { m.hub.remove(m) }

// Hub is the server's monitoring: each model's feedback store (which outlives
// reloads of its versions), the live versions' monitors, and the payload log.
type Hub struct {
	payloads *PayloadLogger
	hooks    func(model string) FeedbackHooks
	log      *slog.Logger

	mu       sync.Mutex
	feedback map[string]*Feedback
	live     map[*Monitor]struct{}
	seq      uint64
}

// NewHub makes the hub; payloads may be nil (no payload log), hooks gives each
// model's feedback metrics.
func NewHub(payloads *PayloadLogger, hooks func(model string) FeedbackHooks, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{payloads: payloads, hooks: hooks, log: log, feedback: map[string]*Feedback{}, live: map[*Monitor]struct{}{}}
}

// New makes the monitor of one loaded version. profile may be nil; profileErr
// says why a profile on disk was not used.
func (h *Hub) New(name, version string, md model.Metadata, s Settings, profile *Profile, profileErr string) *Monitor {
	m := &Monitor{Model: name, Version: version, Settings: s, Profile: profile, ProfileError: profileErr, hub: h, log: h.log}
	if profile != nil {
		if s.Features > 0 && len(profile.Features) > s.Features {
			trimmed := *profile
			trimmed.Features = profile.Features[:s.Features]
			profile = &trimmed
			h.log.Warn("monitoring only the first features of the profile", "model", name, "version", version, "features", s.Features)
		}
		m.drift = NewDrift(profile, md, s.Window, s.MinRows)
		m.outcome = profile.Predict
	}
	if m.outcome == nil {
		m.outcome = DeriveOutcome(md)
	}
	if m.outcome != nil {
		for i, o := range md.Outputs {
			if o.Name == m.outcome.Output {
				m.output = i
			}
		}
		m.feedback = h.feedbackFor(name, s.Feedback)
	}
	h.mu.Lock()
	h.seq++
	m.seq = h.seq
	h.live[m] = struct{}{}
	h.mu.Unlock()
	return m
}

func (h *Hub) feedbackFor(name string, cfg FeedbackConfig) *Feedback {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feedback[name]
	if f == nil {
		var hooks FeedbackHooks
		if h.hooks != nil {
			hooks = h.hooks(name)
		}
		f = NewFeedback(cfg, hooks)
		h.feedback[name] = f
	}
	return f
}

// Feedback is a model's feedback store, if it has one.
func (h *Hub) Feedback(name string) (*Feedback, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feedback[name]
	return f, ok
}

func (h *Hub) remove(m *Monitor) {
	h.mu.Lock()
	delete(h.live, m)
	h.mu.Unlock()
}

// Live is every served version's monitor, by model then version: during a
// reload, the new load's only.
func (h *Hub) Live() []*Monitor {
	h.mu.Lock()
	newest := map[[2]string]*Monitor{}
	for m := range h.live {
		k := [2]string{m.Model, m.Version}
		if o := newest[k]; o == nil || m.seq > o.seq {
			newest[k] = m
		}
	}
	h.mu.Unlock()
	out := make([]*Monitor, 0, len(newest))
	for _, m := range newest {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Close flushes the payload log.
func (h *Hub) Close() {
	if h.payloads != nil {
		h.payloads.Close(5 * time.Second)
	}
}
