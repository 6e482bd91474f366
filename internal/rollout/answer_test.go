package rollout

import (
	"reflect"
	"testing"
)

func TestReadAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Prediction
		err        bool
	}{
		{"predict labels", `{"prediction":[1,0]}`, Prediction{Labels: []string{"1", "0"}}, false},
		{"predict named labels", `{"prediction":["fraud","ok"]}`, Prediction{Labels: []string{"fraud", "ok"}}, false},
		{"predict values", `{"prediction":[1.5,2]}`, Prediction{Values: []float64{1.5, 2}}, false},
		{"oip classifier", `{"model_name":"m","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"data":[1,1]},{"name":"predict_proba","datatype":"FP64","shape":[2,2],"data":[0.25,0.75,0.5,0.5]}]}`,
			Prediction{Labels: []string{"1", "1"}, Probabilities: [][]float64{{0.25, 0.75}, {0.5, 0.5}}}, false},
		{"oip regressor", `{"outputs":[{"name":"variable","datatype":"FP32","shape":[2,1],"data":[0.5,-1]}]}`, Prediction{Values: []float64{0.5, -1}}, false},
		{"oip probabilities only", `{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[2,3],"data":[0.1,0.2,0.7,0.6,0.3,0.1]}]}`,
			Prediction{Labels: []string{"2", "0"}, Probabilities: [][]float64{{0.1, 0.2, 0.7}, {0.6, 0.3, 0.1}}}, false},
		{"error answer", `{"error":"model not found"}`, Prediction{}, true},
		{"not json", `<html>`, Prediction{}, true},
		{"bad label", `{"prediction":[{}]}`, Prediction{}, true},
		{"ragged probabilities", `{"outputs":[{"name":"predict","datatype":"INT64","data":[1,0]},{"name":"predict_proba","datatype":"FP64","data":[0.1,0.9,0.5]}]}`, Prediction{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAnswer([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzReadAnswer: any body is an answer or an error, and a read answer always
// compares with itself as full agreement.
func FuzzReadAnswer(f *testing.F) {
	for _, s := range []string{`{"prediction":[1,0]}`, `{"prediction":[0.5]}`, `{"outputs":[{"name":"predict","datatype":"INT64","data":[1]},{"name":"predict_proba","datatype":"FP64","data":[0.1,0.9]}]}`,
		`{"outputs":[{"name":"p","datatype":"FP32","shape":[-5,0],"data":[]}]}`, `{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[9223372036854775807],"data":[1]}]}`, `{"prediction":["NaN"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ReadAnswer(body)
		if err != nil {
			return
		}
		a, err := Compare(p, p, Tolerance{})
		if err != nil {
			t.Fatalf("an answer does not compare with itself: %v (%+v)", err, p)
		}
		if a.Agreed != a.Compared || a.ProbabilityDiffSum != 0 && a.ProbabilityDiffSum == a.ProbabilityDiffSum {
			t.Fatalf("self-comparison disagrees: %+v", a)
		}
	})
}
