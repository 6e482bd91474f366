package lightgbm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// objective is what LightGBM's objective function does to a raw score at
// prediction time (ObjectiveFunction::ConvertOutput).
type objective struct {
	name string
	// classifier: predict is a class index and predict_proba the
	// probabilities (binary, multiclass, multiclassova).
	classifier bool
	multiclass bool // softmax or one-vs-all over numClass scores
	numClass   int
	// transform maps one score to its prediction (nil: softmax over the row).
	transform func(float64) float64
}

// parseObjective reads the header's objective line: a name and its
// parameters ("binary sigmoid:1", "multiclass num_class:5", "regression sqrt").
func parseObjective(line string) (objective, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		// A model trained with a custom objective: its scores are raw.
		return objective{name: "custom", transform: identity}, nil
	}
	o := objective{name: fields[0]}
	params := map[string]string{}
	for _, p := range fields[1:] {
		k, v, _ := strings.Cut(p, ":")
		params[k] = v
	}
	sigmoid := 1.0
	if s, ok := params["sigmoid"]; ok {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return o, fmt.Errorf("objective %q: sigmoid:%s is not a positive number", o.name, truncate(s))
		}
		sigmoid = x
	}
	logistic := func(x float64) float64 { return 1 / (1 + math.Exp(-sigmoid*x)) }
	switch o.name {
	case "binary":
		o.classifier, o.transform = true, logistic
	case "multiclass", "multiclassova":
		n, err := strconv.Atoi(params["num_class"])
		if err != nil || n < 2 || n > maxClasses {
			return o, fmt.Errorf("objective %q: num_class:%q is not a class count", o.name, truncate(params["num_class"]))
		}
		o.classifier, o.multiclass, o.numClass = true, true, n
		if o.name == "multiclassova" {
			o.transform = logistic
		}
	case "regression", "regression_l1", "huber", "fair", "quantile", "mape":
		o.transform = identity
		if _, sqrt := params["sqrt"]; sqrt {
			// Trained on sqrt(label): the prediction is squared back, sign kept.
			o.transform = func(x float64) float64 { return math.Copysign(x*x, x) }
		}
	case "poisson", "gamma", "tweedie":
		o.transform = math.Exp
	case "cross_entropy":
		o.transform = func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	case "cross_entropy_lambda":
		o.transform = func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	case "lambdarank", "rank_xendcg":
		o.transform = identity // relevance scores, compared within a query
	case "custom":
		o.transform = identity
	default:
		return o, fmt.Errorf("objective %q is not supported (binary, multiclass, multiclassova, regression, regression_l1, huber, fair, quantile, mape, poisson, gamma, tweedie, cross_entropy, cross_entropy_lambda, lambdarank and rank_xendcg are)", truncate(o.name))
	}
	return o, nil
}

func identity(x float64) float64 { return x }

// softmax writes LightGBM's Common::Softmax of scores to out.
func softmax(scores, out []float64) {
	wmax := scores[0]
	for _, s := range scores[1:] {
		wmax = math.Max(wmax, s)
	}
	var sum float64
	for i, s := range scores {
		out[i] = math.Exp(s - wmax)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
}
