package profiler

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/tideserve/tide/internal/monitor"

	_ "github.com/tideserve/tide/internal/formats/sklearn"
)

const mixed = "../formats/sklearn/testdata/mixed/"

// fixture is sklearn's own evaluation of the mixed-type fraud pipeline
// (gen_mixed.py): the rows, and predict / predict_proba on them.
type fixture struct {
	Columns []struct{ Name, Kind string }
	Rows    [][]any
	Predict []int64
	Proba   [][]float64 `json:"predict_proba"`
}

func loadFixture(t *testing.T) fixture {
	t.Helper()
	b, err := os.ReadFile(mixed + "fraud_hgb.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func modelDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fraud")
	os.MkdirAll(dir, 0o755)
	b, err := os.ReadFile(mixed + "fraud_hgb.joblib")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model.joblib"), b, 0o644)
	return dir
}

func writeCSV(t *testing.T, f fixture) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.csv")
	out, _ := os.Create(path)
	w := csv.NewWriter(out)
	var header []string
	for _, c := range f.Columns {
		header = append(header, c.Name)
	}
	w.Write(header)
	for _, r := range f.Rows {
		rec := make([]string, len(r))
		for i, v := range r {
			switch v := v.(type) {
			case nil:
				rec[i] = ""
			case float64:
				rec[i] = strconv.FormatFloat(v, 'g', -1, 64)
			case string:
				rec[i] = v
			}
		}
		w.Write(rec)
	}
	w.Flush()
	out.Close()
	return path
}

// parquetRow is the fixture's columns as a Parquet schema: optional values, so
// that None stays null.
type parquetRow struct {
	TransactionID    *string  `parquet:"transaction_id,optional"`
	Amount           *float64 `parquet:"amount,optional"`
	Hour             *float64 `parquet:"hour,optional"`
	Age              *float64 `parquet:"age,optional"`
	MerchantCategory *string  `parquet:"merchant_category,optional"`
	Country          *string  `parquet:"country,optional"`
	Device           *string  `parquet:"device,optional"`
}

func writeParquet(t *testing.T, f fixture) string {
	t.Helper()
	str := func(v any) *string {
		if s, ok := v.(string); ok {
			return &s
		}
		return nil
	}
	num := func(v any) *float64 {
		if x, ok := v.(float64); ok {
			return &x
		}
		return nil
	}
	rows := make([]parquetRow, len(f.Rows))
	for i, r := range f.Rows {
		rows[i] = parquetRow{str(r[0]), num(r[1]), num(r[2]), num(r[3]), str(r[4]), str(r[5]), str(r[6])}
	}
	path := filepath.Join(t.TempDir(), "ref.parquet")
	if err := parquet.WriteFile(path, rows, parquet.MaxRowsPerRowGroup(300)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProfileOfTheMixedFraudPipeline: numeric features in quantile bins with
// their missing shares, text features as category shares, the dropped column
// left out, and the prediction distribution equal to what sklearn's own
// predict and predict_proba give on the same rows.
func TestProfileOfTheMixedFraudPipeline(t *testing.T) {
	f := loadFixture(t)
	p, err := Build(context.Background(), Options{Model: modelDir(t), Data: writeCSV(t, f), Bins: 10})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range p.Features {
		names = append(names, c.Name+":"+c.Kind)
	}
	if got := strings.Join(names, " "); got != "amount:numeric hour:numeric age:numeric merchant_category:categorical country:categorical device:categorical" {
		t.Fatalf("features %s", got)
	}
	// amount: edges at numpy's quantiles of the present values, missing share.
	var amounts []float64
	missing := 0
	for _, r := range f.Rows {
		if x, ok := r[1].(float64); ok {
			amounts = append(amounts, x)
		} else {
			missing++
		}
	}
	sort.Float64s(amounts)
	want := monitor.QuantileEdges(amounts, 10)
	a := p.Features[0]
	if len(a.Edges) != len(want) || a.Missing != float64(missing)/float64(len(f.Rows)) || *a.Min != amounts[0] || *a.Max != amounts[len(amounts)-1] {
		t.Fatalf("amount %+v", a)
	}
	for i := range want {
		if a.Edges[i] != want[i] {
			t.Errorf("edge %d = %v, want %v", i, a.Edges[i], want[i])
		}
	}
	// country: shares of the present values, most frequent first.
	counts := map[string]int{}
	present := 0
	for _, r := range f.Rows {
		if s, ok := r[5].(string); ok {
			counts[s]++
			present++
		}
	}
	c := p.Features[4]
	for i, cat := range c.Categories {
		if c.Shares[i] != float64(counts[cat])/float64(present) || (i > 0 && c.Shares[i] > c.Shares[i-1]) {
			t.Errorf("category %s share %v", cat, c.Shares[i])
		}
	}
	// The prediction: sklearn's class shares and positive-class quantiles.
	o := p.Predict
	ones := 0
	pos := make([]float64, len(f.Proba))
	for i, row := range f.Proba {
		pos[i] = row[1]
		ones += int(f.Predict[i])
	}
	if o.Kind != monitor.Probabilities || strings.Join(o.Classes, ",") != "0,1" || o.Shares[1] != float64(ones)/float64(len(f.Proba)) {
		t.Fatalf("prediction %+v", o)
	}
	sort.Float64s(pos)
	wantScore := monitor.QuantileEdges(pos, 10)
	for i := range wantScore {
		if math.Abs(o.Score.Edges[i]-wantScore[i]) != 0 {
			t.Errorf("score edge %d = %v, sklearn's %v", i, o.Score.Edges[i], wantScore[i])
		}
	}
	// It round-trips through the server's reader.
	b, _ := json.Marshal(p)
	if _, err := monitor.ParseProfile(b); err != nil {
		t.Fatal(err)
	}
}

func TestParquetGivesTheSameProfileAsCSV(t *testing.T) {
	f := loadFixture(t)
	dir := modelDir(t)
	fromCSV, err := Build(context.Background(), Options{Model: dir, Data: writeCSV(t, f)})
	if err != nil {
		t.Fatal(err)
	}
	fromParquet, err := Build(context.Background(), Options{Model: dir, Data: writeParquet(t, f)})
	if err != nil {
		t.Fatal(err)
	}
	fromCSV.Created, fromCSV.Source, fromParquet.Created, fromParquet.Source = "", "", "", ""
	a, _ := json.Marshal(fromCSV)
	b, _ := json.Marshal(fromParquet)
	if string(a) != string(b) {
		t.Errorf("CSV and Parquet profiles differ:\n%s\n%s", a, b)
	}
}

func TestProfileErrors(t *testing.T) {
	f := loadFixture(t)
	dir := modelDir(t)
	data := writeCSV(t, f)
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("amount,hour\n1,2\n"), 0o644)
	notNum := filepath.Join(t.TempDir(), "notnum.csv")
	b, _ := os.ReadFile(data)
	os.WriteFile(notNum, []byte(strings.Replace(string(b), "50.98", "fifty", 1)), 0o644)
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Model: dir, Data: data, Bins: 50}, "--bins 50: want 2 to 20"},
		{Options{Model: dir, Data: bad}, `bad.csv has no column "transaction_id" (the model's feature); its columns: amount, hour`},
		{Options{Model: dir, Data: notNum}, `column "amount", row 1: "fifty" is not a number`},
		{Options{Model: filepath.Join(dir, "nope"), Data: data}, "nope"},
		{Options{Model: dir, Data: data + ".parquet"}, "no such file"},
	} {
		_, err := Build(context.Background(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.o, err, c.want)
		}
	}
}
