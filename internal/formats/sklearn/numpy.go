package sklearn

import "math"

// The numerical building blocks scikit-learn's predictions are made of, written to
// round exactly as numpy and scipy do, so that Go's outputs match sklearn's to the
// bit. Every estimator shares these; none keeps its own copy.

// expit is scipy.special.expit as scipy 1.10 computes it, 1/(1+exp(-x)), with
// exp rounded as glibc rounds it (glibcExp), so OvR probabilities are sklearn's
// to the bit.
func expit(x float64) float64 { return 1 / (1 + glibcExp(-x)) }

// softmax replaces v by its softmax in place, in sklearn.utils.extmath.softmax's
// order of operations: subtract the maximum, exponentiate, divide by the sum.
// numpy's np.exp is glibc's exp except on CPUs with AVX-512, where numpy uses its
// own vector exp; there about one value in six differs by an ulp.
func softmax(v []float64) {
	m := v[0]
	for _, x := range v[1:] {
		if x > m || math.IsNaN(x) {
			m = x
		}
	}
	for i := range v {
		v[i] = glibcExp(v[i] - m)
	}
	s := numpySum(v)
	for i := range v {
		v[i] /= s
	}
}

// argmax returns the index of the first maximum, treating NaN as the maximum the
// way numpy.argmax does.
func argmax(v []float64) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if math.IsNaN(v[best]) {
			return best
		}
		if v[i] > v[best] || math.IsNaN(v[i]) {
			best = i
		}
	}
	return best
}

// pairwiseSum adds v the way numpy's sum does along a contiguous axis: plainly
// below 8 elements, with 8 interleaved accumulators up to 128, and by halves above,
// so row sums (OvR normalisation, softmax) round exactly as numpy's do.
func pairwiseSum(v []float64) float64 {
	n := len(v)
	switch {
	case n < 8:
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], v[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += v[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += v[i]
		}
		return s
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(v[:n2]) + pairwiseSum(v[n2:])
}

// numpySum is numpy's float64 sum reduction of one contiguous row: 0 plus the
// pairwise sum (the 0 makes an all -0.0 row sum to +0.0, as numpy's does).
func numpySum(v []float64) float64 { return 0 + pairwiseSum(v) }
