package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// FeedbackConfig bounds what one model keeps to match ground truth with.
type FeedbackConfig struct {
	// TTL is how long a prediction waits for its label; later feedback is
	// answered "expired".
	TTL time.Duration
	// MaxRows bounds the predictions kept (rows, over all requests): past it
	// the oldest go first, and their feedback is "unknown".
	MaxRows int
	// Window is how many labelled rows the rolling quality figures cover.
	Window int
	// Threshold is a binary classifier's decision threshold on the positive
	// class's probability.
	Threshold float64
}

// DefaultFeedback is what a model gets unless its config says otherwise.
var DefaultFeedback = FeedbackConfig{TTL: time.Hour, MaxRows: 100_000, Window: 1000, Threshold: 0.5}

// MaxFeedbackItems bounds one POST .../feedback; a larger batch is refused whole.
const MaxFeedbackItems = 10_000

// Feedback results, as each item's answer and the tide_feedback_total label say.
const (
	FeedbackOK        = "ok"
	FeedbackUnknown   = "unknown"   // no prediction with this id (never, or pushed out)
	FeedbackExpired   = "expired"   // the prediction is older than the TTL
	FeedbackDuplicate = "duplicate" // this row already has its label
	FeedbackInvalid   = "invalid"   // the item is malformed or its label is not a class
)

// FeedbackHooks are the metrics feedback records (all optional).
type FeedbackHooks struct {
	Result func(result string)
	Delay  func(d time.Duration)
}

// Feedback keeps one model's recent predictions by request id, matches ground
// truth to them, and keeps each version's rolling quality window. It outlives
// reloads of the model: it belongs to the model's name.
//
// The store holds nothing the garbage collector has to trace: predictions sit
// in one ring of float64 rows, entries in a ring of fixed-size records, and
// ids are kept as two 64-bit hashes (a 128-bit fingerprint) indexed by a map of
// integers. A store of 100,000 rows is a few MiB that the collector skips,
// and keeping a prediction allocates nothing.
type Feedback struct {
	cfg   FeedbackConfig
	hooks FeedbackHooks
	now   func() time.Time
	seed1 maphash.Seed
	seed2 maphash.Seed

	mu       sync.Mutex
	width    int       // values per row: the classes' probabilities, or 1
	values   []float64 // MaxRows × width, a ring by row
	labelled []bool    // per row of the ring
	nextRow  int       // the ring row the next prediction starts at
	rows     int       // rows held
	entries  []entry   // a ring of MaxRows records, oldest at head
	head     int
	count    int
	byID     map[uint64]int32 // first hash → entry index
	versions []keptVersion
	quality  map[string]*quality // by version
	scratch  []float64           // one output column, converted (under mu)
}

// entry is one kept request: where its rows are and whose they are.
type entry struct {
	h1, h2  uint64 // the id's fingerprint
	at      int64  // when it was kept (Unix ns)
	row     int32  // its first row in the ring
	rows    int32
	version uint16 // index into versions
	live    bool   // false once replaced by a later prediction with the same id
}

// keptVersion is a version whose predictions are kept, with how to read them.
type keptVersion struct {
	name string
	o    *Outcome
}

// NewFeedback makes a model's prediction store.
func NewFeedback(cfg FeedbackConfig, hooks FeedbackHooks) *Feedback {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultFeedback.TTL
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = DefaultFeedback.MaxRows
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultFeedback.Window
	}
	if !(cfg.Threshold > 0 && cfg.Threshold < 1) {
		cfg.Threshold = DefaultFeedback.Threshold
	}
	return &Feedback{cfg: cfg, hooks: hooks, now: time.Now, seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(),
		byID: map[uint64]int32{}, quality: map[string]*quality{}}
}

// widthOf is how many values a row of this outcome keeps.
func widthOf(o *Outcome) int {
	if o.Kind == Probabilities {
		return len(o.Classes)
	}
	return 1
}

// Keep stores a request's predictions under its id. A request of more rows than
// the store holds is not kept; an id seen again replaces the older entry.
func (f *Feedback) Keep(id, version string, o *Outcome, output *tensor.Tensor, n int) {
	if id == "" || o == nil || n <= 0 || n > f.cfg.MaxRows {
		return
	}
	w := widthOf(o)
	var stride int
	switch o.Kind {
	case Probabilities:
		if len(output.Shape) != 2 || int(output.Shape[1]) != w || output.Len() < n*w {
			return
		}
	case Values:
		stride = 1
		if len(output.Shape) == 2 {
			stride = int(output.Shape[1])
		}
		if output.Len() < (n-1)*stride+1 {
			return
		}
	case Labels:
		if output.Len() < n {
			return
		}
	}
	h1, h2 := maphash.String(f.seed1, id), maphash.String(f.seed2, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.values == nil || f.width != w {
		f.reset(w)
	}
	f.expire(now, n)
	vi := f.versionIndex(version, o)
	if old, ok := f.byID[h1]; ok {
		f.entries[old].live = false
	}
	// The rows, written into the ring from nextRow on.
	R := f.cfg.MaxRows
	row := func(r int) []float64 { at := (f.nextRow + r) % R; return f.values[at*w : (at+1)*w] }
	ok := true
	switch o.Kind {
	case Probabilities:
		ok = gatherRows(output, n, w, row)
	case Values:
		var vals []float64
		if vals = gather(output, 0, stride, n, f.scratch[:0]); vals != nil {
			f.scratch = vals
			for r, v := range vals {
				row(r)[0] = v
			}
		}
		ok = vals != nil
	case Labels:
		f.scratch, ok = o.labelIndex().eachClass(output, n, f.scratch, func(r, class int) { row(r)[0] = float64(class) })
	}
	if !ok {
		return // not kept; the rows written are unused ring space
	}
	for r := 0; r < n; r++ {
		f.labelled[(f.nextRow+r)%R] = false
	}
	i := (f.head + f.count) % len(f.entries)
	f.entries[i] = entry{h1: h1, h2: h2, at: now.UnixNano(), row: int32(f.nextRow), rows: int32(n), version: vi, live: true}
	f.count++
	f.byID[h1] = int32(i)
	f.nextRow = (f.nextRow + n) % R
	f.rows += n
}

// gatherRows copies n rows of k probabilities from t into row(r).
func gatherRows(t *tensor.Tensor, n, k int, row func(r int) []float64) bool {
	switch v := t.Data.(type) {
	case []float64:
		for r := 0; r < n; r++ {
			copy(row(r), v[r*k:(r+1)*k])
		}
	case []float32:
		for r := 0; r < n; r++ {
			dst := row(r)
			for c := range dst {
				dst[c] = float64(v[r*k+c])
			}
		}
	default:
		return false
	}
	return true
}

// reset empties the store and sizes it for rows of width w (a reload whose
// outcome has another number of classes starts it afresh).
func (f *Feedback) reset(w int) {
	R := f.cfg.MaxRows
	f.width, f.values, f.labelled = w, make([]float64, R*w), make([]bool, R)
	f.entries = make([]entry, R)
	f.head, f.count, f.rows, f.nextRow = 0, 0, 0, 0
	clear(f.byID)
}

func (f *Feedback) versionIndex(name string, o *Outcome) uint16 {
	for i, v := range f.versions {
		if v.name == name && v.o == o {
			return uint16(i)
		}
	}
	if len(f.versions) >= 1<<16-1 {
		f.versions = f.versions[:0] // pathological reload churn: older entries read as the newest
	}
	f.versions = append(f.versions, keptVersion{name: name, o: o})
	return uint16(len(f.versions) - 1)
}

// expire drops the oldest predictions while n more rows would not fit, or
// while they are older than twice the TTL (kept one TTL longer than useful, so
// that late feedback is told "expired" rather than "unknown").
func (f *Feedback) expire(now time.Time, n int) {
	cutoff := now.Add(-2 * f.cfg.TTL).UnixNano()
	for f.count > 0 {
		e := &f.entries[f.head]
		if f.rows+n <= f.cfg.MaxRows && e.at > cutoff {
			break
		}
		if e.live {
			if i, ok := f.byID[e.h1]; ok && int(i) == f.head {
				delete(f.byID, e.h1)
			}
		}
		f.rows -= int(e.rows)
		f.head = (f.head + 1) % len(f.entries)
		f.count--
	}
}

// Kept is the number of prediction rows held for feedback.
func (f *Feedback) Kept() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows
}

// Item is one piece of ground truth: the request's id, the row within it (0 for
// a one-row request), and the true class (Label, as text) or value.
type Item struct {
	ID    string
	Row   int
	Label *string
	Value *float64
	// Err says why a malformed item is invalid; it is answered, not applied.
	Err string
}

// ItemResult is one item's answer.
type ItemResult struct {
	ID     string `json:"id"`
	Row    int    `json:"row,omitempty"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// DecodeFeedback reads a POST .../feedback body: a JSON array of items, or one
// item, each {"id": "...", "label": 1 | "fraud"} or {"id": "...", "value": 3.2},
// with an optional "row". A body that is not JSON, or not items, is an error;
// an item that is malformed is returned with Err set, so that the rest apply.
func DecodeFeedback(body []byte) ([]Item, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("the body is empty: send a JSON array of {\"id\", \"label\"} or {\"id\", \"value\"} items")
	}
	var raws []json.RawMessage
	switch body[0] {
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("the body is not a JSON array of items: %s", oneLine(err))
		}
	case '{':
		if !json.Valid(body) {
			return nil, errors.New("the body is not valid JSON")
		}
		raws = []json.RawMessage{body}
	default:
		return nil, errors.New("the body is not a JSON array of feedback items")
	}
	if len(raws) > MaxFeedbackItems {
		return nil, &TooManyError{N: len(raws)}
	}
	items := make([]Item, len(raws))
	for i, raw := range raws {
		items[i] = decodeItem(raw)
	}
	return items, nil
}

// TooManyError is a feedback batch over MaxFeedbackItems (413).
type TooManyError struct{ N int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("%d feedback items in one request; at most %d", e.N, MaxFeedbackItems)
}

func decodeItem(raw json.RawMessage) Item {
	var f struct {
		ID    json.RawMessage `json:"id"`
		Row   json.RawMessage `json:"row"`
		Label json.RawMessage `json:"label"`
		Value json.RawMessage `json:"value"`
	}
	var it Item
	if err := json.Unmarshal(raw, &f); err != nil || bytes.TrimSpace(raw)[0] != '{' {
		it.Err = "an item must be an object with \"id\" and \"label\" or \"value\""
		return it
	}
	// null is no value (encoding/json would read it as "" or 0).
	for _, field := range []*json.RawMessage{&f.ID, &f.Row, &f.Label, &f.Value} {
		if string(*field) == "null" {
			*field = nil
		}
	}
	if err := json.Unmarshal(f.ID, &it.ID); err != nil || it.ID == "" {
		it.ID, it.Err = "", "\"id\" must be the prediction's request id, a non-empty string"
		return it
	}
	if len(it.ID) > 128 {
		it.ID, it.Err = model.ShortName(it.ID), "\"id\" is longer than a request id (128 bytes)"
		return it
	}
	if f.Row != nil {
		if err := json.Unmarshal(f.Row, &it.Row); err != nil || it.Row < 0 {
			it.Err = "\"row\" must be a row number (0 or more)"
			return it
		}
	}
	switch {
	case f.Label != nil && f.Value != nil:
		it.Err = "give \"label\" or \"value\", not both"
	case f.Label != nil:
		var s string
		var x float64
		if json.Unmarshal(f.Label, &s) == nil {
			it.Label = &s
		} else if json.Unmarshal(f.Label, &x) == nil {
			s = strconv.FormatFloat(x, 'g', -1, 64)
			it.Label = &s
		} else {
			it.Err = "\"label\" must be a class: a number or a string"
		}
	case f.Value != nil:
		var x float64
		if err := json.Unmarshal(f.Value, &x); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			it.Err = "\"value\" must be a finite number"
		} else {
			it.Value = &x
		}
	default:
		it.Err = "an item needs \"label\" (a classifier's true class) or \"value\" (a regressor's true value)"
	}
	return it
}

// Apply matches items to kept predictions and adds each match to its version's
// quality window. It does not count the results (Record does): an item this
// replica does not know may be matched by another (the server forwards it).
func (f *Feedback) Apply(items []Item) []ItemResult {
	out := make([]ItemResult, len(items))
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for i, it := range items {
		r := ItemResult{ID: it.ID, Row: it.Row}
		r.Status, r.Error = f.apply(it, now)
		out[i] = r
	}
	return out
}

// Record counts each item's final result (tide_feedback_total).
func (f *Feedback) Record(results []ItemResult) {
	if f.hooks.Result == nil {
		return
	}
	for _, r := range results {
		f.hooks.Result(r.Status)
	}
}

func (f *Feedback) apply(it Item, now time.Time) (string, string) {
	if it.Err != "" {
		return FeedbackInvalid, it.Err
	}
	i, ok := f.byID[maphash.String(f.seed1, it.ID)]
	if !ok {
		return FeedbackUnknown, ""
	}
	e := &f.entries[i]
	if !e.live || e.h2 != maphash.String(f.seed2, it.ID) {
		return FeedbackUnknown, ""
	}
	at := time.Unix(0, e.at)
	if now.Sub(at) > f.cfg.TTL {
		return FeedbackExpired, ""
	}
	if it.Row >= int(e.rows) {
		return FeedbackInvalid, fmt.Sprintf("row %d: the request had %d rows", it.Row, e.rows)
	}
	ring := (int(e.row) + it.Row) % f.cfg.MaxRows
	if f.labelled[ring] {
		return FeedbackDuplicate, ""
	}
	v := f.versions[e.version]
	o := v.o
	vals := f.values[ring*f.width : (ring+1)*f.width]
	q := f.quality[v.name]
	if q == nil || q.classes != len(o.Classes) {
		q = newQuality(f.cfg.Window, len(o.Classes))
		f.quality[v.name] = q
	}
	switch o.Kind {
	case Values:
		if it.Value == nil {
			return FeedbackInvalid, "a regressor's feedback is a \"value\""
		}
		q.addValue(vals[0], *it.Value)
	default:
		if it.Label == nil {
			return FeedbackInvalid, "a classifier's feedback is a \"label\""
		}
		truth := -1
		for c, name := range o.Classes {
			if name == *it.Label {
				truth = c
			}
		}
		if truth < 0 {
			return FeedbackInvalid, fmt.Sprintf("label %q is not a class of the model (%s)", model.ShortName(*it.Label), list(o.Classes))
		}
		if o.Kind == Probabilities {
			q.addClass(argmax(vals), truth, vals)
		} else {
			q.addClass(int(vals[0]), truth, nil)
		}
	}
	f.labelled[ring] = true
	if f.hooks.Delay != nil {
		f.hooks.Delay(now.Sub(at))
	}
	return FeedbackOK, ""
}

// quality is one version's window of labelled rows, oldest overwritten first.
type quality struct {
	size, next, n int
	classes       int
	pred, truth   []int32
	probs         []float64 // size × classes when the model gives probabilities
	hasProbs      []bool
	value, actual []float64
}

func newQuality(size, classes int) *quality {
	return &quality{size: size, classes: classes}
}

func (q *quality) slot() int {
	i := q.next
	q.next = (q.next + 1) % q.size
	if q.n < q.size {
		q.n++
	}
	return i
}

func (q *quality) addClass(pred, truth int, probs []float64) {
	if q.pred == nil {
		q.pred, q.truth, q.hasProbs = make([]int32, q.size), make([]int32, q.size), make([]bool, q.size)
		q.probs = make([]float64, q.size*q.classes)
	}
	i := q.slot()
	q.pred[i], q.truth[i] = int32(pred), int32(truth)
	q.hasProbs[i] = probs != nil
	if probs != nil {
		copy(q.probs[i*q.classes:], probs)
	}
}

func (q *quality) addValue(pred, actual float64) {
	if q.value == nil {
		q.value, q.actual = make([]float64, q.size), make([]float64, q.size)
	}
	i := q.slot()
	q.value[i], q.actual[i] = pred, actual
}

// QualityReport is one version's rolling figures over its last Rows labelled
// rows. Absent figures are undefined for the window.
type QualityReport struct {
	Version   string   `json:"version"`
	Rows      int      `json:"rows"`
	Window    int      `json:"window"`
	Accuracy  *float64 `json:"accuracy,omitempty"`
	Precision *float64 `json:"precision,omitempty"`
	Recall    *float64 `json:"recall,omitempty"`
	F1        *float64 `json:"f1,omitempty"`
	ROCAUC    *float64 `json:"roc_auc,omitempty"`
	LogLoss   *float64 `json:"log_loss,omitempty"`
	Brier     *float64 `json:"brier,omitempty"`
	MAE       *float64 `json:"mae,omitempty"`
	RMSE      *float64 `json:"rmse,omitempty"`
	MeanError *float64 `json:"mean_error,omitempty"`
}

// Quality reports the rolling figures of every version that has feedback.
func (f *Feedback) Quality() []QualityReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []QualityReport
	for v, q := range f.quality {
		out = append(out, q.report(v, f.cfg.Threshold))
	}
	sortReports(out)
	return out
}

func (q *quality) report(version string, threshold float64) QualityReport {
	r := QualityReport{Version: version, Rows: q.n, Window: q.size}
	if q.value != nil {
		m := RegressionMetrics(q.value[:q.n], q.actual[:q.n])
		r.MAE, r.RMSE, r.MeanError = num(m.MAE), num(m.RMSE), num(m.MeanError)
		return r
	}
	if q.pred == nil {
		return r
	}
	allProbs := true
	for _, h := range q.hasProbs[:q.n] {
		allProbs = allProbs && h
	}
	var m ClassifierMetrics
	if q.classes == 2 {
		// Precision, recall and F1 of the positive class (classes[1], as
		// sklearn's pos_label for 0/1), at the threshold when there are
		// probabilities; from the answered labels when there are not, and
		// then without the figures that need a probability.
		b := Binary{Scores: make([]float64, q.n), Positive: make([]bool, q.n)}
		for i := 0; i < q.n; i++ {
			b.Positive[i] = q.truth[i] == 1
			if allProbs {
				b.Scores[i] = q.probs[i*2+1]
			} else if q.pred[i] == 1 {
				b.Scores[i] = 1
			}
		}
		m = BinaryMetrics(b, threshold)
		if !allProbs {
			m.ROCAUC, m.LogLoss, m.Brier = math.NaN(), math.NaN(), math.NaN()
		}
	} else {
		pred, truth := make([]int, q.n), make([]int, q.n)
		var probs [][]float64
		if allProbs {
			probs = make([][]float64, q.n)
		}
		for i := 0; i < q.n; i++ {
			pred[i], truth[i] = int(q.pred[i]), int(q.truth[i])
			if pred[i] < 0 { // a label the model answered that is not a class
				pred[i] = truth[i] + 1 // counted wrong
				if pred[i] >= q.classes {
					pred[i] = 0
				}
			}
			if probs != nil {
				probs[i] = q.probs[i*q.classes : (i+1)*q.classes]
			}
		}
		m = MulticlassMetrics(probs, pred, truth, q.classes)
	}
	r.Accuracy, r.Precision, r.Recall, r.F1 = num(m.Accuracy), num(m.Precision), num(m.Recall), num(m.F1)
	r.ROCAUC, r.LogLoss, r.Brier = num(m.ROCAUC), num(m.LogLoss), num(m.Brier)
	return r
}

func sortReports(r []QualityReport) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Version < r[j-1].Version; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}
