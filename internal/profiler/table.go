package profiler

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// table is the reference data, column by column, as text with a missing mark:
// CSV is text, and a Parquet number written back with strconv's shortest form
// parses to the same float64, so one representation serves both.
type table struct {
	rows    int
	index   map[string]int
	text    [][]string
	missing [][]bool
}

func (t *table) column(name string) ([]string, []bool, bool) {
	i, ok := t.index[name]
	if !ok {
		return nil, nil, false
	}
	return t.text[i], t.missing[i], true
}

// readTable reads the columns named in want (others are skipped) from a CSV
// file with a header row, or a Parquet file (by its .parquet extension), at most
// maxRows rows. progress is called now and then with the rows read.
func readTable(path string, want []string, maxRows int, progress func(rows int)) (*table, error) {
	if strings.EqualFold(filepath.Ext(path), ".parquet") {
		return readParquet(path, want, maxRows, progress)
	}
	return readCSV(path, want, maxRows, progress)
}

func newTable(want []string) *table {
	t := &table{index: map[string]int{}, text: make([][]string, len(want)), missing: make([][]bool, len(want))}
	for i, w := range want {
		t.index[w] = i
	}
	return t
}

// missingText is what pandas.read_csv reads as NaN by default (its na_values).
var missingText = map[string]bool{"": true, "#N/A": true, "#N/A N/A": true, "#NA": true, "-1.#IND": true, "-1.#QNAN": true,
	"-NaN": true, "-nan": true, "1.#IND": true, "1.#QNAN": true, "<NA>": true, "N/A": true, "NA": true, "NULL": true,
	"NaN": true, "None": true, "n/a": true, "nan": true, "null": true}

func readCSV(path string, want []string, maxRows int, progress func(int)) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header row: %w", filepath.Base(path), err)
	}
	header = append([]string(nil), header...)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	t := newTable(want)
	pos := make([]int, len(want))
	for i, w := range want {
		pos[i] = -1
		for j, h := range header {
			if h == w {
				pos[i] = j
			}
		}
		if pos[i] < 0 {
			return nil, fmt.Errorf("%s has no column %q (the model's feature); its columns: %s", filepath.Base(path), w, strings.Join(header, ", "))
		}
	}
	for t.rows < maxRows {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		for i, p := range pos {
			v := rec[p]
			t.text[i] = append(t.text[i], strings.Clone(v))
			t.missing[i] = append(t.missing[i], missingText[v])
		}
		t.rows++
		if t.rows%100_000 == 0 {
			progress(t.rows)
		}
	}
	return t, nil
}

func readParquet(path string, want []string, maxRows int, progress func(int)) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not a Parquet file: %s", filepath.Base(path), oneLine(err))
	}
	t := newTable(want)
	leaf := make(map[int]int, len(want)) // file column → table column
	for i, w := range want {
		lc, ok := pf.Schema().Lookup(w)
		if !ok || lc.Node == nil {
			return nil, fmt.Errorf("%s has no column %q (the model's feature)", filepath.Base(path), w)
		}
		if lc.MaxRepetitionLevel > 0 {
			return nil, fmt.Errorf("%s: column %q repeats (a list); profile flat columns", filepath.Base(path), w)
		}
		leaf[lc.ColumnIndex] = i
	}
	buf := make([]parquet.Row, 1024)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for t.rows < maxRows {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:min(n, maxRows-t.rows)] {
				seen := make([]bool, len(want))
				for _, v := range row {
					i, ok := leaf[v.Column()]
					if !ok {
						continue
					}
					s, miss := parquetText(v)
					t.text[i] = append(t.text[i], s)
					t.missing[i] = append(t.missing[i], miss)
					seen[i] = true
				}
				for i, ok := range seen {
					if !ok {
						t.text[i] = append(t.text[i], "")
						t.missing[i] = append(t.missing[i], true)
					}
				}
				t.rows++
				if t.rows%100_000 == 0 {
					progress(t.rows)
				}
			}
			if errors.Is(err, io.EOF) || n == 0 {
				break
			}
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("%s: %s", filepath.Base(path), oneLine(err))
			}
		}
		rows.Close()
	}
	return t, nil
}

func parquetText(v parquet.Value) (string, bool) {
	if v.IsNull() {
		return "", true
	}
	switch v.Kind() {
	case parquet.Boolean:
		if v.Boolean() {
			return "1", false
		}
		return "0", false
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10), false
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10), false
	case parquet.Float:
		x := float64(v.Float())
		return strconv.FormatFloat(x, 'g', -1, 64), math.IsNaN(x)
	case parquet.Double:
		x := v.Double()
		return strconv.FormatFloat(x, 'g', -1, 64), math.IsNaN(x)
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray()), false
	}
	return v.String(), false
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
