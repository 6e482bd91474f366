// Package tensortest compares tensors in tests of the codecs and front ends.
package tensortest

import (
	"fmt"
	"strings"

	"github.com/tideserve/tide/internal/tensor"
)

// Dump writes tensors as "name datatype shape data; ...". Floats print in their
// shortest round-tripping form, so two dumps are equal exactly when the tensors
// agree in name, datatype, shape and every element (NaN payloads aside).
func Dump(ts []*tensor.Tensor) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s %s %v %v; ", t.Name, t.Datatype, t.Shape, t.Data)
	}
	return b.String()
}

// Same reports whether a and b Dump alike.
func Same(a, b []*tensor.Tensor) bool { return Dump(a) == Dump(b) }
