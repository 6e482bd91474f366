package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ReadAnswer reads the predictions out of a Tide answer body, as the router
// captured it, so two versions' answers to one request can be compared. It knows
// the two JSON shapes Tide answers:
//
//   - /predict: {"prediction": [...]}: integers or strings are a classifier's
//     labels, other numbers a regressor's values;
//   - OIP v2 infer: {"outputs": [...]}: the first output whose datatype is an
//     integer, BOOL or BYTES holds the labels and an FP output named like
//     "*proba*" or "*probabilit*" the class probabilities; with no label output,
//     the first FP output holds a regressor's values.
//
// The body is from a backend, but a backend is just another server: malformed,
// huge or hostile answers are an error, never a panic (fuzzed).
func ReadAnswer(body []byte) (Prediction, error) {
	var top struct {
		Prediction []json.RawMessage `json:"prediction"`
		Outputs    []oipOutput       `json:"outputs"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&top); err != nil {
		return Prediction{}, errors.New("answer is not a JSON object")
	}
	switch {
	case top.Prediction != nil:
		return fromPredict(top.Prediction)
	case top.Outputs != nil:
		return fromOIP(top.Outputs)
	}
	return Prediction{}, errors.New(`answer has neither "prediction" nor "outputs"`)
}

type oipOutput struct {
	Name     string            `json:"name"`
	Datatype string            `json:"datatype"`
	Shape    []int64           `json:"shape"`
	Data     []json.RawMessage `json:"data"`
}

func fromPredict(rows []json.RawMessage) (Prediction, error) {
	labels := make([]string, len(rows))
	allLabels := true
	for i, r := range rows {
		l, isLabel, err := label(r)
		if err != nil {
			return Prediction{}, fmt.Errorf("prediction %d: %w", i, err)
		}
		labels[i] = l
		allLabels = allLabels && isLabel
	}
	if allLabels {
		return Prediction{Labels: labels}, nil
	}
	values := make([]float64, len(rows))
	for i, r := range rows {
		v, err := strconv.ParseFloat(string(r), 64)
		if err != nil {
			return Prediction{}, fmt.Errorf("prediction %d is neither a label nor a number", i)
		}
		values[i] = v
	}
	return Prediction{Values: values}, nil
}

// label reads a JSON string or integer as a label; isLabel is false for a
// non-integral number (a regressor's value).
func label(r json.RawMessage) (string, bool, error) {
	s := strings.TrimSpace(string(r))
	switch {
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(r, &v); err != nil {
			return "", false, errors.New("not a JSON string")
		}
		return v, true, nil
	case s == "true" || s == "false":
		return s, true, nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return s, true, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return "", false, nil
	}
	return "", false, errors.New("not a string or a number")
}

func fromOIP(outs []oipOutput) (Prediction, error) {
	var p Prediction
	labelOut, probOut, valueOut := -1, -1, -1
	for i, o := range outs {
		dt := strings.ToUpper(o.Datatype)
		name := strings.ToLower(o.Name)
		switch {
		case labelOut < 0 && (strings.HasPrefix(dt, "INT") || strings.HasPrefix(dt, "UINT") || dt == "BOOL" || dt == "BYTES"):
			labelOut = i
		case strings.HasPrefix(dt, "FP") && (strings.Contains(name, "proba") || strings.Contains(name, "probabilit")):
			if probOut < 0 {
				probOut = i
			}
		case strings.HasPrefix(dt, "FP") && valueOut < 0:
			valueOut = i
		}
	}
	switch {
	case labelOut >= 0:
		o := outs[labelOut]
		p.Labels = make([]string, len(o.Data))
		for i, r := range o.Data {
			l, ok, err := label(r)
			if err != nil || !ok {
				return Prediction{}, fmt.Errorf("output %q element %d is not a label", o.Name, i)
			}
			p.Labels[i] = l
		}
		if probOut >= 0 {
			probs, err := matrix(outs[probOut], len(p.Labels))
			if err != nil {
				return Prediction{}, err
			}
			p.Probabilities = probs
		}
	case valueOut >= 0:
		v, err := floats(outs[valueOut])
		if err != nil {
			return Prediction{}, err
		}
		p.Values = v
	case probOut >= 0:
		// Probabilities alone (an ONNX classifier without a label output): the
		// label is the most probable class.
		o := outs[probOut]
		rows := 0
		if len(o.Shape) > 0 {
			rows = int(min(max(o.Shape[0], 0), int64(len(o.Data))))
		}
		probs, err := matrix(o, rows)
		if err != nil {
			return Prediction{}, err
		}
		p.Probabilities = probs
		p.Labels = make([]string, len(probs))
		for i, row := range probs {
			best := 0
			for j := range row {
				if row[j] > row[best] {
					best = j
				}
			}
			p.Labels[i] = strconv.Itoa(best)
		}
	default:
		return Prediction{}, errors.New("answer has no label, probability or numeric output")
	}
	return p, nil
}

func floats(o oipOutput) ([]float64, error) {
	v := make([]float64, len(o.Data))
	for i, r := range o.Data {
		f, err := strconv.ParseFloat(strings.TrimSpace(string(r)), 64)
		if err != nil {
			if s := strings.Trim(string(r), `"`); s == "NaN" || s == "Infinity" || s == "-Infinity" || s == "Inf" || s == "-Inf" {
				f, _ = strconv.ParseFloat(s, 64)
			} else {
				return nil, fmt.Errorf("output %q element %d is not a number", o.Name, i)
			}
		}
		v[i] = f
	}
	return v, nil
}

// matrix reads o as rows×k probabilities (row-major, as OIP sends them).
func matrix(o oipOutput, rows int) ([][]float64, error) {
	v, err := floats(o)
	if err != nil {
		return nil, err
	}
	if rows <= 0 || len(v)%rows != 0 {
		return nil, fmt.Errorf("output %q has %d values for %d rows", o.Name, len(v), rows)
	}
	k := len(v) / rows
	out := make([][]float64, rows)
	for i := range out {
		out[i] = v[i*k : (i+1)*k]
	}
	return out, nil
}
