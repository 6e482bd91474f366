package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/metrics"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// fraudMeta is the tutorial's model: two numeric features, predict and predict_proba.
var fraudMeta = model.Metadata{
	Inputs:   []model.TensorSpec{{Name: "input", Datatype: tensor.FP64, Shape: []int64{-1, 2}}},
	Outputs:  []model.TensorSpec{{Name: "predict", Datatype: tensor.Int64, Shape: []int64{-1}}, {Name: "predict_proba", Datatype: tensor.FP64, Shape: []int64{-1, 2}}},
	Features: []string{"f1", "f2"},
}

func normalProfile(t *testing.T, rng *rand.Rand) *Profile {
	t.Helper()
	ref := make([]float64, 5000)
	for i := range ref {
		ref[i] = rng.NormFloat64()
	}
	col := func(name string) Column {
		s := append([]float64(nil), ref...)
		sortFloats(s)
		edges := QuantileEdges(s, 10)
		lo, hi := s[0], s[len(s)-1]
		return Column{Name: name, Kind: Numeric, Edges: edges, Shares: binShares(edges, s), Min: &lo, Max: &hi}
	}
	score := col("score")
	p := &Profile{Format: ProfileFormat, Rows: 5000, Features: []Column{col("f1"), col("f2")},
		Predict: &Outcome{Output: "predict_proba", Kind: Probabilities, Classes: []string{"0", "1"}, Shares: []float64{0.5, 0.5}, Score: &score}}
	b, _ := json.Marshal(p)
	parsed, err := ParseProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Validate(fraudMeta); err != nil {
		t.Fatal(err)
	}
	return parsed
}

func sortFloats(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// request builds one request of n rows drawn from N(shift, 1) and its outputs.
func request(rng *rand.Rand, n int, shift float64) ([]*tensor.Tensor, []*tensor.Tensor) {
	x := make([]float64, 2*n)
	for i := range x {
		x[i] = rng.NormFloat64() + shift
	}
	proba := make([]float64, 2*n)
	label := make([]int64, n)
	for r := 0; r < n; r++ {
		p := 1 / (1 + math.Exp(-x[2*r]))
		proba[2*r], proba[2*r+1] = 1-p, p
		if p >= 0.5 {
			label[r] = 1
		}
	}
	in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(n), 2}, Data: x}}
	out := []*tensor.Tensor{{Name: "predict", Datatype: tensor.Int64, Shape: []int64{int64(n)}, Data: label},
		{Name: "predict_proba", Datatype: tensor.FP64, Shape: []int64{int64(n), 2}, Data: proba}}
	return in, out
}

func TestDriftSeesAShiftAndForgetsIt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := normalProfile(t, rng)
	d := NewDrift(p, fraudMeta, Window{Rows: 1000}, 100)
	if r := d.Report(); r.Ready || r.Features[0].PSI != nil {
		t.Fatalf("empty window reports statistics: %+v", r)
	}
	feed := func(shift float64, rows int) DriftReport {
		for i := 0; i < rows/10; i++ {
			in, out := request(rng, 10, shift)
			d.Observe(in, out)
		}
		return d.Report()
	}
	r := feed(0, 1000)
	if !r.Ready || r.Rows < 900 || r.Rows > 1000 {
		t.Fatalf("window holds %d rows (ready %v), want 900–1000", r.Rows, r.Ready)
	}
	if psi := *r.Features[0].PSI; psi > 0.05 {
		t.Errorf("in-distribution PSI %.3f, want < 0.05", psi)
	}
	r = feed(1.5, 1000)
	if psi := *r.Features[0].PSI; psi < 0.5 {
		t.Errorf("PSI after a 1.5σ shift %.3f, want > 0.5", psi)
	}
	if ks := *r.Features[0].KS; ks < 0.4 {
		t.Errorf("KS after a 1.5σ shift %.3f", ks)
	}
	if r.Prediction[0].Name != "class" || *r.Prediction[1].PSI < 0.2 {
		t.Errorf("prediction drift not seen: %+v", r.Prediction)
	}
	r = feed(0, 1000)
	if psi := *r.Features[0].PSI; psi > 0.05 {
		t.Errorf("PSI once traffic is back %.3f, want < 0.05 (the window forgets)", psi)
	}
}

func TestTimeWindowEmptiesWithTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Unix(1000, 0)
	d := NewDrift(normalProfile(t, rng), fraudMeta, Window{Span: 10 * time.Second}, 10)
	d.now = func() time.Time { return now }
	d.slotStart = now
	in, out := request(rng, 50, 0)
	d.Observe(in, out)
	now = now.Add(5 * time.Second)
	d.Observe(in, out)
	if r := d.Report(); r.Rows != 100 {
		t.Fatalf("rows %d, want 100", r.Rows)
	}
	now = now.Add(6 * time.Second) // the first 50 rows are past the window
	if r := d.Report(); r.Rows != 50 {
		t.Fatalf("rows %d after 11 s, want 50", r.Rows)
	}
	now = now.Add(time.Hour)
	if r := d.Report(); r.Rows != 0 || r.Ready {
		t.Fatalf("rows %d an hour later, want 0", r.Rows)
	}
}

func TestDriftSkipsWhatDoesNotFit(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	d := NewDrift(normalProfile(t, rng), fraudMeta, Window{Rows: 100}, 1)
	// Wrong types and short data are skipped, never a panic.
	d.Observe([]*tensor.Tensor{{Name: "input", Datatype: tensor.Bytes, Shape: []int64{3, 2}, Data: [][]byte{nil}}}, nil)
	d.Observe([]*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{3, 2}, Data: []float64{1}}}, nil)
	d.Observe(nil, nil)
	x := []float64{math.NaN(), 1, 99, 0}
	d.Observe([]*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{2, 2}, Data: x}}, nil)
	r := d.Report()
	f1 := r.Features[0]
	if *f1.Missing != 0.5 || *f1.OutOfRange != 1 { // f1 of the 2 rows: NaN (missing) and 99 (out of range); the malformed requests were skipped
		t.Errorf("f1 missing %v out of range %v", *f1.Missing, *f1.OutOfRange)
	}
}

func TestCategoricalColumnsCountUnseen(t *testing.T) {
	md := model.Metadata{
		Inputs:   []model.TensorSpec{{Name: "amount", Datatype: tensor.FP64, Shape: []int64{-1}}, {Name: "country", Datatype: tensor.Bytes, Shape: []int64{-1}}},
		Outputs:  []model.TensorSpec{{Name: "predict", Datatype: tensor.Bytes, Shape: []int64{-1}}},
		Features: []string{"amount", "country"},
	}
	p := &Profile{Format: ProfileFormat, Features: []Column{{Name: "country", Kind: Categorical, Categories: []string{"DE", "FR"}, Shares: []float64{0.75, 0.25}}},
		Predict: &Outcome{Output: "predict", Kind: Labels, Classes: []string{"fraud", "ok"}, Shares: []float64{0.1, 0.9}}}
	if err := p.Validate(md); err != nil {
		t.Fatal(err)
	}
	d := NewDrift(p, md, Window{Rows: 100}, 1)
	in := []*tensor.Tensor{{Name: "amount", Datatype: tensor.FP64, Shape: []int64{4}, Data: []float64{1, 2, 3, 4}},
		{Name: "country", Datatype: tensor.Bytes, Shape: []int64{4}, Data: [][]byte{[]byte("DE"), []byte("Atlantis"), nil, []byte("FR")}}}
	out := []*tensor.Tensor{{Name: "predict", Datatype: tensor.Bytes, Shape: []int64{4}, Data: [][]byte{[]byte("ok"), []byte("ok"), []byte("fraud"), []byte("??")}}}
	d.Observe(in, out)
	r := d.Report()
	c := r.Features[0]
	if *c.Missing != 0.25 || math.Abs(*c.Unseen-1.0/3) > 1e-15 {
		t.Errorf("country missing %v unseen %v, want 0.25 and 1/3", *c.Missing, *c.Unseen)
	}
	if cl := r.Prediction[0]; *cl.Unseen != 0.25 {
		t.Errorf("an unknown label's share %v, want 0.25", *cl.Unseen)
	}
	// A numeric profile for a string input is refused by name.
	bad := &Profile{Format: ProfileFormat, Features: []Column{{Name: "country", Kind: Numeric, Shares: []float64{1}}}}
	if err := bad.Validate(md); err == nil || !strings.Contains(err.Error(), `"country" is numeric but the model takes it as strings`) {
		t.Errorf("err = %v", err)
	}
}

func TestProfileErrorsAreOneLine(t *testing.T) {
	for body, want := range map[string]string{
		`{`:                            "not valid JSON",
		`{"format":"x","features":[]}`: `format "x" is not`,
		`{"format":"tide-profile/v1"}`: "no features and no prediction",
		`{"format":"tide-profile/v1","features":[{"name":"a","kind":"numeric","edges":[2,1],"shares":[0.2,0.3,0.5]}]}`: "strictly ascending",
		`{"format":"tide-profile/v1","features":[{"name":"a","kind":"numeric","edges":[1],"shares":[0.2,0.3]}]}`:       "sum to 0.5",
		`{"format":"tide-profile/v1","features":[{"name":"a","kind":"text","shares":[1]}]}`:                            `kind "text"`,
		`{"format":"tide-profile/v1","features":[{"name":"a","kind":"numeric","shares":[1]}],"extra":1}`:               "unknown field",
		`{"format":"tide-profile/v1","features":[{"name":"a","kind":"numeric","shares":[1]}]} {}`:                      "after its JSON",
	} {
		_, err := ParseProfile([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", body, err, want)
		}
	}
	p := &Profile{Format: ProfileFormat, Features: []Column{{Name: "nope", Kind: Numeric, Shares: []float64{1}}}}
	if err := p.Validate(fraudMeta); err == nil || !strings.Contains(err.Error(), `"nope" is not a feature of the model (features: f1, f2)`) {
		t.Errorf("err = %v", err)
	}
	p = &Profile{Format: ProfileFormat, Predict: &Outcome{Output: "predict_proba", Kind: Probabilities, Classes: []string{"a", "b", "c"}, Shares: []float64{0.2, 0.3, 0.5}}}
	if err := p.Validate(fraudMeta); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("err = %v", err)
	}
}

func TestFeedbackMatchesExpiresAndBounds(t *testing.T) {
	now := time.Unix(5000, 0)
	var results []string
	var delays []time.Duration
	f := NewFeedback(FeedbackConfig{TTL: time.Minute, MaxRows: 10, Window: 4}, FeedbackHooks{
		Result: func(r string) { results = append(results, r) }, Delay: func(d time.Duration) { delays = append(delays, d) }})
	f.now = func() time.Time { return now }
	o := DeriveOutcome(fraudMeta)
	if o == nil || o.Kind != Probabilities || o.Output != "predict_proba" {
		t.Fatalf("derived outcome %+v", o)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	_, out := request(rng, 3, 0)
	f.Keep("a", "1", o, out[1], 3)
	now = now.Add(2 * time.Second)
	label := func(s string) *string { return &s }
	res := f.Apply([]Item{
		{ID: "a", Row: 0, Label: label("1")},
		{ID: "a", Row: 0, Label: label("0")}, // the same row again
		{ID: "a", Row: 5, Label: label("0")},
		{ID: "a", Row: 1, Label: label("7")},
		{ID: "a", Row: 2, Value: new(float64)},
		{ID: "zz", Label: label("1")},
		{Err: "bad"},
	})
	f.Record(res)
	got := []string{}
	for _, r := range res {
		got = append(got, r.Status)
	}
	want := "ok duplicate invalid invalid invalid unknown invalid"
	if strings.Join(got, " ") != want {
		t.Fatalf("results %v, want %s", got, want)
	}
	if !strings.Contains(res[3].Error, `label "7" is not a class of the model (0, 1)`) {
		t.Errorf("error %q", res[3].Error)
	}
	if len(delays) != 1 || delays[0] != 2*time.Second || len(results) != 7 {
		t.Errorf("delays %v results %v", delays, results)
	}
	now = now.Add(2 * time.Minute)
	if r := f.Apply([]Item{{ID: "a", Row: 1, Label: label("1")}}); r[0].Status != FeedbackExpired {
		t.Errorf("after the TTL: %s", r[0].Status)
	}
	// Bounded: 12 rows into a store of 10 push the first request out.
	for _, id := range []string{"b", "c", "d", "e"} {
		f.Keep(id, "1", o, out[1], 3)
	}
	if f.Kept() > 10 {
		t.Errorf("kept %d rows, bound 10", f.Kept())
	}
	if r := f.Apply([]Item{{ID: "b", Label: label("1")}, {ID: "e", Label: label("1")}}); r[0].Status != FeedbackUnknown || r[1].Status != FeedbackOK {
		t.Errorf("bounded store: %+v", r)
	}
	q := f.Quality()
	if len(q) != 1 || q[0].Rows != 2 || q[0].Accuracy == nil {
		t.Fatalf("quality %+v", q)
	}
}

func TestFeedbackAccuracyFollowsFlippedLabels(t *testing.T) {
	f := NewFeedback(FeedbackConfig{Window: 1000}, FeedbackHooks{})
	o := DeriveOutcome(fraudMeta)
	rng := rand.New(rand.NewPCG(9, 10))
	var items []Item
	for i := 0; i < 1000; i++ {
		_, out := request(rng, 1, 0)
		id := "r" + string(rune('a'+i%26)) + json.Number(itoa(i)).String()
		f.Keep(id, "2", o, out[1], 1)
		p := out[1].Data.([]float64)[1]
		truth := "0"
		if p >= 0.5 {
			truth = "1"
		}
		if i%10 < 3 { // 30 % flipped
			truth = map[string]string{"0": "1", "1": "0"}[truth]
		}
		items = append(items, Item{ID: id, Label: &truth})
	}
	f.Apply(items)
	q := f.Quality()[0]
	if math.Abs(*q.Accuracy-0.7) > 1e-9 {
		t.Errorf("accuracy %v with 30%% flipped labels, want 0.7", *q.Accuracy)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDecodeFeedback(t *testing.T) {
	items, err := DecodeFeedback([]byte(`[{"id":"a","label":1},{"id":"b","label":"fraud","row":2},{"id":"c","value":2.5},{"id":"d"},{"id":"","label":1},{"id":"e","label":1,"value":2},{"id":"f","label":[1]},{"id":"g","row":-1,"label":1},{"id":"h","value":null},{"id":"i","label":null},7]`))
	if err != nil {
		t.Fatal(err)
	}
	if *items[0].Label != "1" || *items[1].Label != "fraud" || items[1].Row != 2 || *items[2].Value != 2.5 {
		t.Errorf("decoded %+v", items[:3])
	}
	for i := 3; i < len(items); i++ {
		if items[i].Err == "" {
			t.Errorf("item %d accepted: %+v", i, items[i])
		}
	}
	for _, body := range []string{``, `nope`, `[1,`, `"x"`, `{"id":`} {
		if _, err := DecodeFeedback([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
	big := "[" + strings.Repeat(`{"id":"a","label":1},`, MaxFeedbackItems) + `{"id":"a","label":1}]`
	if _, err := DecodeFeedback([]byte(big)); err == nil {
		t.Error("a batch over the limit was accepted")
	} else if _, ok := err.(*TooManyError); !ok {
		t.Errorf("err %T %v", err, err)
	}
}

func TestPayloadLogFileAndDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payloads.jsonl")
	var mu sync.Mutex
	counts := map[string]int{}
	hook := func(k string) func() { return func() { mu.Lock(); counts[k]++; mu.Unlock() } }
	l, err := NewPayloadLogger(path, PayloadHooks{Sent: hook("sent"), Dropped: hook("dropped"), Failed: hook("failed")})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Payload{ID: "r1", Model: "fraud", Version: "1", Endpoint: "predict", Time: time.Unix(0, 0), ContentType: "application/json",
		Request: []byte(`{"feature1":1}`), Response: []byte(`{"prediction":[0]}`)})
	l.Log(Payload{ID: "r2", Model: "fraud", Endpoint: "infer", ContentType: "application/octet-stream", Request: []byte{0, 1}, Response: []byte{2}})
	l.Close(5 * time.Second)
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), b)
	}
	var e map[string]any
	json.Unmarshal([]byte(lines[0]), &e)
	if e["type"] != EventRequest || e["id"] != "r1" || e["inferenceservicename"] != "fraud" || e["specversion"] != "1.0" {
		t.Errorf("event %v", e)
	}
	if d, _ := e["data"].(map[string]any); d["feature1"] != 1.0 {
		t.Errorf("data %v", e["data"])
	}
	json.Unmarshal([]byte(lines[3]), &e)
	if e["type"] != EventResponse || e["data_base64"] != "Ag==" {
		t.Errorf("binary response event %v", e)
	}
	if counts["sent"] != 2 {
		t.Errorf("counts %v", counts)
	}
	// A sink that hangs: the queue fills and further payloads are dropped, at once.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	l, _ = NewPayloadLogger(srv.URL, PayloadHooks{Dropped: hook("dropped")})
	start := time.Now()
	for i := 0; i < PayloadQueue+100; i++ {
		l.Log(Payload{ID: "x", ContentType: "application/json"})
	}
	if time.Since(start) > time.Second {
		t.Errorf("logging waited %s", time.Since(start))
	}
	mu.Lock()
	if counts["dropped"] < 99 {
		t.Errorf("dropped %d, want ≥ 99", counts["dropped"])
	}
	mu.Unlock()
}

func TestPayloadLogHTTPIsKServeBinaryMode(t *testing.T) {
	got := make(chan *http.Request, 2)
	bodies := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
	}))
	defer srv.Close()
	l, err := NewPayloadLogger(srv.URL+"/events", PayloadHooks{})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Payload{ID: "r9", Model: "fraud", Version: "3", Endpoint: "infer", ContentType: "application/json", Request: []byte(`{"inputs":[]}`), Response: []byte(`{"outputs":[]}`)})
	l.Close(5 * time.Second)
	r := <-got
	if r.Header.Get("Ce-Type") != EventRequest || r.Header.Get("Ce-Id") != "r9" || r.Header.Get("Ce-Inferenceservicename") != "fraud" ||
		r.Header.Get("Ce-Specversion") != "1.0" || <-bodies != `{"inputs":[]}` {
		t.Errorf("request event headers %v", r.Header)
	}
	if r := <-got; r.Header.Get("Ce-Type") != EventResponse || <-bodies != `{"outputs":[]}` {
		t.Errorf("response event headers %v", r.Header)
	}
}

func FuzzDecodeFeedback(f *testing.F) {
	for _, s := range []string{`[{"id":"a","label":1}]`, `{"id":"a","value":1e308}`, `[{"id":"a","row":1e30,"label":true}]`, `[[[[`, `[{"id":"\u0000","label":"x"}]`} {
		f.Add([]byte(s))
	}
	fb := NewFeedback(FeedbackConfig{}, FeedbackHooks{})
	fb.Keep("a", "1", DeriveOutcome(fraudMeta), &tensor.Tensor{Name: "predict_proba", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{0.3, 0.7}}, 1)
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := DecodeFeedback(body)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, r := range fb.Apply(items) { // (Record counts; Apply must not)
			switch r.Status {
			case FeedbackOK, FeedbackUnknown, FeedbackExpired, FeedbackDuplicate, FeedbackInvalid:
			default:
				t.Fatalf("status %q", r.Status)
			}
		}
	})
}

func FuzzParseProfile(f *testing.F) {
	good, _ := json.Marshal(normalProfile(&testing.T{}, rand.New(rand.NewPCG(1, 1))))
	f.Add(good)
	f.Add([]byte(`{"format":"tide-profile/v1","features":[{"name":"c","kind":"categorical","categories":["a","a"],"shares":[0.5,0.5]}]}`))
	f.Add([]byte(`{"format":"tide-profile/v1","prediction":{"output":"predict","kind":"values","score":{"name":"s","kind":"numeric","edges":[1e308],"shares":[0,1]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if p.Validate(fraudMeta) != nil {
			return
		}
		// Whatever parses and fits can be monitored without a panic.
		d := NewDrift(p, fraudMeta, Window{Rows: 10}, 1)
		in, out := request(rand.New(rand.NewPCG(2, 2)), 5, 0)
		d.Observe(in, out)
		d.Report()
	})
}

// BenchmarkObserveOneRow is what monitoring adds to a one-row request of the
// tutorial's model: drift counts of two features and the prediction, and the
// prediction kept for feedback in a full store.
func BenchmarkObserveOneRow(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := normalProfile(&testing.T{}, rng)
	hub := NewHub(nil, nil, nil)
	m := hub.New("fraud", "1", fraudMeta, Settings{Window: Window{Rows: 1000}, MinRows: 100, Feedback: DefaultFeedback}, p, "")
	in, out := request(rng, 1, 0)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x", rng.Uint64())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Observe(ids[i&(1<<16-1)], in, out)
	}
}

// TestExportFollowsTheServedVersions: a version that stops serving leaves the
// exported series, its drift and its quality alike; the one serving stays.
func TestExportFollowsTheServedVersions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	p := normalProfile(t, rng)
	hub := NewHub(nil, nil, nil)
	s := Settings{Window: Window{Rows: 100}, MinRows: 1, Feedback: DefaultFeedback}
	v1 := hub.New("fraud", "1", fraudMeta, s, p, "")
	v2 := hub.New("fraud", "2", fraudMeta, s, p, "")
	in, out := request(rng, 1, 0)
	v1.Observe("a", in, out)
	v2.Observe("b", in, out)
	one := "1"
	fb, _ := hub.Feedback("fraud")
	fb.Apply([]Item{{ID: "a", Label: &one}, {ID: "b", Label: &one}})
	series := func() string {
		var lines []string
		hub.Export(func(s metrics.Sample) { lines = append(lines, s.Name+"{"+strings.Join(s.Labels, ",")+"}") })
		return strings.Join(lines, "\n")
	}
	if got := series(); !strings.Contains(got, "tide_model_quality{fraud,1,accuracy}") || !strings.Contains(got, "tide_feature_drift{fraud,2,f1,psi}") {
		t.Fatalf("both versions serving:\n%s", got)
	}
	v1.Close()
	got := series()
	if strings.Contains(got, "{fraud,1,") || !strings.Contains(got, "tide_model_quality{fraud,2,accuracy}") {
		t.Errorf("after version 1 stopped serving:\n%s", got)
	}
}

// TestNumericLabelsReadAlikeInDriftAndFeedback: a labels output of numbers is
// read through the same class index by drift and by the feedback store: the
// class "1" is the answer 1 whatever its numeric type.
func TestNumericLabelsReadAlikeInDriftAndFeedback(t *testing.T) {
	md := model.Metadata{
		Inputs:   []model.TensorSpec{{Name: "input", Datatype: tensor.FP64, Shape: []int64{-1, 2}}},
		Outputs:  []model.TensorSpec{{Name: "predict", Datatype: tensor.Int64, Shape: []int64{-1}}},
		Features: []string{"f1", "f2"},
	}
	o := &Outcome{Output: "predict", Kind: Labels, Classes: []string{"0", "1"}, Shares: []float64{0.5, 0.5}}
	p := &Profile{Format: ProfileFormat, Predict: o}
	if err := p.Validate(md); err != nil {
		t.Fatal(err)
	}
	in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{3, 2}, Data: []float64{1, 2, 3, 4, 5, 6}}}
	out := []*tensor.Tensor{{Name: "predict", Datatype: tensor.Int64, Shape: []int64{3}, Data: []int64{1, 1, 7}}}
	d := NewDrift(p, md, Window{Rows: 100}, 1)
	d.Observe(in, out)
	cl := d.Report().Prediction[0]
	if cl.Shares[1] != 2.0/3 || *cl.Unseen != 1.0/3 {
		t.Errorf("class shares %v unseen %v, want 2/3 of class 1 and 1/3 unseen", cl.Shares, *cl.Unseen)
	}
	f := NewFeedback(FeedbackConfig{}, FeedbackHooks{})
	answers := &tensor.Tensor{Name: "predict", Datatype: tensor.Int32, Shape: []int64{3}, Data: []int32{1, 0, 0}}
	f.Keep("r", "1", o, answers, 3)
	one, zero := "1", "0"
	res := f.Apply([]Item{{ID: "r", Row: 0, Label: &one}, {ID: "r", Row: 1, Label: &one}, {ID: "r", Row: 2, Label: &zero}})
	for _, r := range res {
		if r.Status != FeedbackOK {
			t.Fatalf("results %+v", res)
		}
	}
	if q := f.Quality()[0]; *q.Accuracy != 2.0/3 { // rows 0 and 2 right, row 1 answered 0 for a 1
		t.Errorf("accuracy %v, want 2/3", *q.Accuracy)
	}
}
