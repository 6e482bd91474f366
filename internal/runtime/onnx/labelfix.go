package onnx

import "github.com/tideserve/tide/internal/tensor"

type labelFix struct{}

func (labelFix) apply(out []*tensor.Tensor, i int) error { return nil }
