package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
)

// fraudProfile is a profile of the tutorial's two features as N(0, 1), written
// as tide profile writes one.
func fraudProfile(t *testing.T) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	col := func(name string) monitor.Column {
		v := make([]float64, 4000)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		sort.Float64s(v)
		edges := monitor.QuantileEdges(v, 10)
		counts := make([]float64, len(edges)+1)
		for _, x := range v {
			counts[monitor.Bin(edges, x)]++
		}
		lo, hi := v[0], v[len(v)-1]
		return monitor.Column{Name: name, Kind: monitor.Numeric, Edges: edges, Shares: monitor.Shares(counts), Min: &lo, Max: &hi}
	}
	p := monitor.Profile{Format: monitor.ProfileFormat, Rows: 4000, Features: []monitor.Column{col("feature1"), col("feature2")},
		Predict: &monitor.Outcome{Output: "predict_proba", Kind: monitor.Probabilities, Classes: []string{"0", "1"}, Shares: []float64{0.9, 0.1}}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// monitoredServer serves fraud_logreg (with files beside it: name → contents)
// and fraud_rf (never monitored).
func monitoredServer(t *testing.T, opts Options, files map[string][]byte) (*Server, string) {
	t.Helper()
	return monitoredServerWith(t, t.TempDir(), opts, files)
}

func monitoredServerAt(b *testing.B, root string, files map[string][]byte) (*Server, string) {
	return monitoredServerWith(b, root, Options{}, files)
}

func monitoredServerWith(t testing.TB, root string, opts Options, files map[string][]byte) (*Server, string) {
	t.Helper()
	for src, dst := range map[string]string{"testdata/fraud_logreg.joblib": "fraud/model.joblib", "testdata/fraud_rf.joblib": "plain/model.joblib"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755)
		os.WriteFile(filepath.Join(root, dst), b, 0o644)
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(root, "fraud", name), b, 0o644)
	}
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	opts.DefaultModel = "fraud"
	s := New(repo, opts, quietLog())
	s.LoadModels(context.Background())
	if !s.IsReady() {
		t.Fatalf("not ready: %+v", repo.Index())
	}
	return s, root
}

func call(t *testing.T, s *Server, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec
}

type monitoringJSON struct {
	Versions []struct {
		Version      string
		Profile      bool
		ProfileError string `json:"profile_error"`
		Drift        *monitor.DriftReport
		Quality      *monitor.QualityReport
	}
	Feedback *struct {
		KeptRows int `json:"kept_rows"`
	}
}

func getMonitoring(t *testing.T, s *Server, path string) monitoringJSON {
	t.Helper()
	rec := call(t, s, "GET", path, "")
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	var m monitoringJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMonitoringThroughEveryRESTProtocol: /predict, OIP infer and KServe v1
// requests are counted into drift and kept for feedback under the id their
// answer carries; feedback moves the rolling accuracy; /metrics exports both.
func TestMonitoringThroughEveryRESTProtocol(t *testing.T) {
	s, _ := monitoredServer(t, Options{}, map[string][]byte{"profile.json": fraudProfile(t)})
	rng := rand.New(rand.NewPCG(1, 1))
	var items []string
	for i := 0; i < 120; i++ {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		var rec *httptest.ResponseRecorder
		switch i % 3 {
		case 0:
			rec = call(t, s, "POST", "/predict", fmt.Sprintf(`{"feature1": %g, "feature2": %g}`, a, b))
		case 1:
			rec = call(t, s, "POST", "/v2/models/fraud/infer", fmt.Sprintf(`{"id": "oip-%d", "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [%g, %g]}]}`, i, a, b))
		default:
			rec = call(t, s, "POST", "/v1/models/fraud:predict", fmt.Sprintf(`{"instances": [[%g, %g]]}`, a, b))
		}
		if rec.Code != 200 {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		id := rec.Header().Get("X-Request-Id")
		if i%3 == 1 {
			id = fmt.Sprintf("oip-%d", i) // the OIP answer's id is the request's
		}
		items = append(items, fmt.Sprintf(`{"id": %q, "label": %d}`, id, i%2))
	}
	m := getMonitoring(t, s, "/v2/models/fraud/monitoring")
	d := m.Versions[0].Drift
	if !m.Versions[0].Profile || d == nil || !d.Ready || d.Rows != 120 || d.Features[0].PSI == nil {
		t.Fatalf("drift %+v", m.Versions[0])
	}
	if psi := *d.Features[0].PSI; psi > 0.25 {
		t.Errorf("in-distribution PSI %.3f", psi)
	}
	if m.Feedback.KeptRows != 120 {
		t.Errorf("kept %d rows", m.Feedback.KeptRows)
	}
	rec := call(t, s, "POST", "/v2/models/fraud/feedback", "["+strings.Join(items, ",")+`, {"id": "never", "label": 1}]`)
	if rec.Code != 200 {
		t.Fatalf("feedback: %d %s", rec.Code, rec.Body)
	}
	var ans struct{ Counts map[string]int }
	json.Unmarshal(rec.Body.Bytes(), &ans)
	if ans.Counts["ok"] != 120 || ans.Counts["unknown"] != 1 {
		t.Fatalf("feedback counts %v", ans.Counts)
	}
	m = getMonitoring(t, s, "/v2/models/fraud/versions/1/monitoring")
	q := m.Versions[0].Quality
	if q == nil || q.Rows != 120 || q.Accuracy == nil || q.ROCAUC == nil {
		t.Fatalf("quality %+v", q)
	}
	metrics := call(t, s, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`tide_feature_drift{feature="feature1",model="fraud",stat="psi",version="1"}`,
		`tide_prediction_drift{model="fraud",prediction="class",stat="js",version="1"}`,
		`tide_model_quality{metric="accuracy",model="fraud",version="1"}`,
		`tide_feedback_total{model="fraud",result="ok"} 120`,
		`tide_feedback_total{model="fraud",result="unknown"} 1`,
		`tide_monitoring_window_rows{model="fraud",version="1"} 120`,
		`tide_feedback_delay_seconds_count{model="fraud"} 120`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `tide_monitoring_window_rows{model="plain"`) || strings.Contains(metrics, `tide_feedback_predictions_kept{model="plain"`) {
		t.Error("the unmonitored model has monitoring series")
	}
}

func TestMonitoringErrors(t *testing.T) {
	s, _ := monitoredServer(t, Options{APIKeys: []string{"k"}}, map[string][]byte{"profile.json": fraudProfile(t)})
	key := []string{"Authorization", "Bearer k"}
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/v2/models/plain/monitoring", "", 404, "model plain is not monitored (put a profile.json"},
		{"POST", "/v2/models/plain/feedback", "[]", 404, "model plain is not monitored"},
		{"GET", "/v2/models/nope/monitoring", "", 404, "nope"},
		{"POST", "/v2/models/fraud/feedback", "{nope", 400, "not valid JSON"},
		{"POST", "/v2/models/fraud/feedback", "", 400, "the body is empty"},
		{"POST", "/v2/models/fraud/feedback", "[" + strings.Repeat(`{"id":"a","label":1},`, monitor.MaxFeedbackItems) + `{"id":"a","label":1}]`, 413, "feedback items in one request; at most 10000"},
		{"GET", "/v2/models/fraud/versions/9/monitoring", "", 404, `\"fraud\" version \"9\"`},
	} {
		rec := call(t, s, c.method, c.path, c.body, key...)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) || strings.Contains(rec.Body.String(), "/tmp") {
			t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.path, rec.Code, rec.Body, c.status, c.want)
		}
	}
	// Feedback and monitoring take the inference keys.
	for _, path := range []string{"/v2/models/fraud/feedback", "/v2/models/fraud/monitoring"} {
		method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(path, "feedback")]
		if rec := call(t, s, method, path, "[]"); rec.Code != 401 {
			t.Errorf("%s without a key: %d", path, rec.Code)
		}
	}
}

// TestAProfileThatDoesNotFitLeavesTheModelServing: monitoring never stops a
// model; the reason is shown, and feedback still works from the outputs.
func TestAProfileThatDoesNotFitLeavesTheModelServing(t *testing.T) {
	bad := []byte(`{"format":"tide-profile/v1","features":[{"name":"amount","kind":"numeric","shares":[1]}]}`)
	s, _ := monitoredServer(t, Options{}, map[string][]byte{"profile.json": bad})
	rec := call(t, s, "POST", "/predict", `{"feature1": 1, "feature2": 2}`)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	m := getMonitoring(t, s, "/v2/models/fraud/monitoring")
	v := m.Versions[0]
	if v.Profile || !strings.Contains(v.ProfileError, `profile profile.json: profile feature "amount" is not a feature of the model (features: feature1, feature2)`) {
		t.Errorf("profile error %q", v.ProfileError)
	}
	id := rec.Header().Get("X-Request-Id")
	if rec := call(t, s, "POST", "/v2/models/fraud/feedback", `{"id": "`+id+`", "label": 0}`); !strings.Contains(rec.Body.String(), `"status":"ok"`) {
		t.Errorf("feedback without a profile: %s", rec.Body)
	}
}

// TestProfileReloadsWithTheModel: a changed profile on disk reloads the
// version; the new reference is used from then on.
func TestProfileReloadsWithTheModel(t *testing.T) {
	s, root := monitoredServer(t, Options{}, map[string][]byte{"config.yaml": []byte("monitoring:\n  window: 100\n  min_rows: 1\n")})
	if m := getMonitoring(t, s, "/v2/models/fraud/monitoring"); m.Versions[0].Profile || m.Versions[0].Drift != nil {
		t.Fatalf("monitoring without a profile: %+v", m.Versions[0])
	}
	os.WriteFile(filepath.Join(root, "fraud", "profile.json"), fraudProfile(t), 0o644)
	if err := s.repo.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	call(t, s, "POST", "/predict", `{"feature1": 1, "feature2": 2}`)
	m := getMonitoring(t, s, "/v2/models/fraud/monitoring")
	if len(m.Versions) != 1 || !m.Versions[0].Profile || m.Versions[0].Drift == nil || m.Versions[0].Drift.Window != "100 rows" || m.Versions[0].Drift.Rows != 1 {
		t.Fatalf("after the profile arrived: %+v", m.Versions)
	}
	// monitoring.enabled: false turns it off, profile or not.
	os.WriteFile(filepath.Join(root, "fraud", "config.yaml"), []byte("monitoring:\n  enabled: false\n"), 0o644)
	s.repo.Refresh(context.Background())
	if rec := call(t, s, "GET", "/v2/models/fraud/monitoring", ""); rec.Code != 404 {
		t.Errorf("enabled: false: %d %s", rec.Code, rec.Body)
	}
}

func TestPayloadLogSamplesMonitoredModels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payloads.jsonl")
	pl, err := monitor.NewPayloadLogger(path, monitor.PayloadHooks{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := monitoredServer(t, Options{PayloadLog: pl}, map[string][]byte{"config.yaml": []byte("monitoring:\n  payload_log_sample: 1\n")})
	id := call(t, s, "POST", "/predict", `{"feature1": 1, "feature2": 2}`).Header().Get("X-Request-Id")
	call(t, s, "POST", "/v2/models/fraud/infer", `{"id": "mine", "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}`)
	call(t, s, "POST", "/v2/models/plain/infer", `{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}`)
	s.monitoring.Close()
	f, _ := os.Open(path)
	defer f.Close()
	var events []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if len(events) != 4 {
		t.Fatalf("%d events, want 4 (2 monitored requests × request and response)", len(events))
	}
	if events[0]["id"] != id || events[0]["endpoint"] != "predict" || events[1]["type"] != monitor.EventResponse || events[2]["id"] != "mine" {
		t.Errorf("events %v", events)
	}
	if d := events[1]["data"].(map[string]any); fmt.Sprint(d["prediction"]) == "" {
		t.Errorf("response data %v", d)
	}

}

// TestGRPCPredictionsTakeFeedback: a gRPC ModelInfer is monitored like REST:
// its predictions are kept under the answer's id (the request's, or the one
// the server made), two rows each, labelled by row; its payload is logged as
// the protobuf JSON mapping.
func TestGRPCPredictionsTakeFeedback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payloads.jsonl")
	pl, err := monitor.NewPayloadLogger(path, monitor.PayloadHooks{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := monitoredServer(t, Options{PayloadLog: pl}, map[string][]byte{"config.yaml": []byte("monitoring:\n  payload_log_sample: 1\n")})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	req := inferReq("fraud", fp64Input("input", []int64{2, 2}, 1, 2, -3, 0.5))
	req.Id = "g-1"
	if _, err := c.ModelInfer(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	resp, err := c.ModelInfer(context.Background(), inferReq("fraud", fp64Input("input", []int64{1, 2}, 0, 0)))
	if err != nil || resp.Id == "" {
		t.Fatalf("%v %v", resp, err)
	}
	rec := call(t, s, "POST", "/v2/models/fraud/feedback", `[{"id":"g-1","row":1,"label":0},{"id":"g-1","row":2,"label":0},{"id":"`+resp.Id+`","label":1}]`)
	if !strings.Contains(rec.Body.String(), `"counts":{"invalid":1,"ok":2}`) || !strings.Contains(rec.Body.String(), "row 2: the request had 2 rows") {
		t.Errorf("feedback: %s", rec.Body)
	}
	s.monitoring.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"endpoint":"grpc"`) || !strings.Contains(string(b), `"modelName":"fraud"`) {
		t.Errorf("gRPC payloads:\n%s", b)
	}
}

// TestFeedbackReachesTheReplicaThatPredicted: two replicas of a monitored
// model, each told of both (as a headless Service names them); feedback sent to
// the one that did not make the prediction is forwarded to the one that did, is
// counted once (where the client sent it), and a peer that is down leaves its
// items unknown without failing the request.
func TestFeedbackReachesTheReplicaThatPredicted(t *testing.T) {
	var lns []net.Listener
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	down := lns[2].Addr().String()
	lns[2].Close() // a replica that is gone
	peers := lns[0].Addr().String() + "," + lns[1].Addr().String() + "," + down
	var servers []*Server
	for i := 0; i < 2; i++ {
		s, _ := monitoredServer(t, Options{FeedbackPeers: peers, APIKeys: []string{"k"}}, map[string][]byte{"profile.json": fraudProfile(t)})
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Serve(ctx, lns[i]); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		servers = append(servers, s)
	}
	key := []string{"Authorization", "Bearer k"}
	a, b := servers[0], servers[1]
	id := call(t, a, "POST", "/predict", `{"feature1": 1, "feature2": 2}`, key...).Header().Get("X-Request-Id")
	rec := call(t, b, "POST", "/v2/models/fraud/feedback", `[{"id": "`+id+`", "label": 1}, {"id": "nobody", "label": 0}]`, key...)
	if !strings.Contains(rec.Body.String(), `"counts":{"ok":1,"unknown":1}`) {
		t.Fatalf("feedback through the other replica: %d %s", rec.Code, rec.Body)
	}
	// The match is in the replica that predicted; the count where it was sent.
	if m := getMonitoringKey(t, a, key); m.Versions[0].Quality == nil || m.Versions[0].Quality.Rows != 1 {
		t.Errorf("replica A quality %+v", m.Versions[0].Quality)
	}
	metricsA := call(t, a, "GET", "/metrics", "").Body.String()
	metricsB := call(t, b, "GET", "/metrics", "").Body.String()
	if strings.Contains(metricsA, `tide_feedback_total{`) || !strings.Contains(metricsB, `tide_feedback_total{model="fraud",result="ok"} 1`) {
		t.Errorf("counted twice or not where sent:\nA: %s\nB: %s", grepLines(metricsA, "tide_feedback_total"), grepLines(metricsB, "tide_feedback_total"))
	}
	// Sent again: the row is labelled already.
	if rec := call(t, b, "POST", "/v2/models/fraud/feedback", `{"id": "`+id+`", "label": 1}`, key...); !strings.Contains(rec.Body.String(), `"duplicate"`) {
		t.Errorf("second label: %s", rec.Body)
	}
}

func getMonitoringKey(t *testing.T, s *Server, key []string) monitoringJSON {
	t.Helper()
	rec := call(t, s, "GET", "/v2/models/fraud/monitoring", "", key...)
	var m monitoringJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	return m
}

// TestOpenAPIDescribesMonitoring: a monitored model's monitoring and feedback
// routes are in /openapi.json, and real requests and answers, good and bad,
// validate against it.
func TestOpenAPIDescribesMonitoring(t *testing.T) {
	s, _ := monitoredServer(t, Options{}, map[string][]byte{"profile.json": fraudProfile(t)})
	raw := getDoc(t, s)
	v := documentValidator(t, raw)
	if !strings.Contains(string(raw), `"/v2/models/fraud/feedback"`) || strings.Contains(string(raw), `"/v2/models/plain/feedback"`) {
		t.Fatal("feedback listed for the wrong models")
	}
	id := call(t, s, "POST", "/predict", `{"feature1": 1, "feature2": 2}`).Header().Get("X-Request-Id")
	for _, c := range []struct {
		method, path, body string
		valid              bool
		status             int
	}{
		{"POST", "/v2/models/fraud/feedback", `[{"id": "` + id + `", "label": 1}, {"id": "x", "row": 2, "value": 3}]`, true, 200},
		{"POST", "/v2/models/fraud/feedback", `{"id": "y", "label": "fraud"}`, true, 200},
		{"POST", "/v2/models/fraud/feedback", `[{"label": 1}]`, false, 200}, // refused by the document; answered per item
		{"GET", "/v2/models/fraud/monitoring", ``, true, 200},
	} {
		if r := exchangeDocumented(t, s, v, c.method, c.path, []byte(c.body), c.valid); r.StatusCode != c.status {
			t.Errorf("%s %s: %d", c.method, c.path, r.StatusCode)
		}
	}
}
