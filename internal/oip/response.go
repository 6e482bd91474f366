package oip

import (
	"strconv"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// InferResponse is an inference result ready to encode.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Outputs      []*tensor.Tensor
}

// AppendInferResponse encodes r as OIP JSON onto dst.
func AppendInferResponse(dst []byte, r *InferResponse) []byte {
	dst = appendResponseHead(dst, r)
	for i, t := range r.Outputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendTensor(dst, t)
	}
	return append(dst, "]}"...)
}

// appendResponseHead writes a response up to the opening of its outputs list:
// model name, version and id.
func appendResponseHead(dst []byte, r *InferResponse) []byte {
	dst = append(dst, `{"model_name":`...)
	dst = jsonwire.AppendString(dst, r.ModelName)
	if r.ModelVersion != "" {
		dst = append(dst, `,"model_version":`...)
		dst = jsonwire.AppendString(dst, r.ModelVersion)
	}
	if r.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = jsonwire.AppendString(dst, r.ID)
	}
	return append(dst, `,"outputs":[`...)
}

// AppendTensor encodes one tensor as {"name","datatype","shape","data"} with flat data.
func AppendTensor(dst []byte, t *tensor.Tensor) []byte {
	dst = append(dst, `{"name":`...)
	dst = jsonwire.AppendString(dst, t.Name)
	dst = append(dst, `,"datatype":"`...)
	dst = append(dst, t.Datatype.String()...)
	dst = append(dst, `","shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, d, 10)
	}
	dst = append(dst, `],"data":`...)
	dst = AppendData(dst, t)
	return append(dst, '}')
}

// AppendData encodes a tensor's elements as a flat JSON array.
func AppendData(dst []byte, t *tensor.Tensor) []byte {
	dst = append(dst, '[')
	switch v := t.Data.(type) {
	case []float64:
		for i, x := range v {
			dst = comma(dst, i)
			dst = jsonwire.AppendFloat(dst, x, 64)
		}
	case []float32:
		for i, x := range v {
			dst = comma(dst, i)
			dst = jsonwire.AppendFloat(dst, float64(x), 32)
		}
	case []uint16:
		for i, x := range v {
			dst = comma(dst, i)
			switch t.Datatype {
			case tensor.FP16:
				dst = jsonwire.AppendFloat(dst, float64(tensor.HalfToFloat32(x)), 32)
			case tensor.BF16:
				dst = jsonwire.AppendFloat(dst, float64(tensor.BFloat16ToFloat32(x)), 32)
			default:
				dst = strconv.AppendUint(dst, uint64(x), 10)
			}
		}
	case []int64:
		for i, x := range v {
			dst = comma(dst, i)
			dst = strconv.AppendInt(dst, x, 10)
		}
	case []int32:
		dst = appendInts(dst, v)
	case []int16:
		dst = appendInts(dst, v)
	case []int8:
		dst = appendInts(dst, v)
	case []uint64:
		for i, x := range v {
			dst = comma(dst, i)
			dst = strconv.AppendUint(dst, x, 10)
		}
	case []uint32:
		dst = appendUints(dst, v)
	case []uint8:
		dst = appendUints(dst, v)
	case []bool:
		for i, x := range v {
			dst = comma(dst, i)
			dst = strconv.AppendBool(dst, x)
		}
	case [][]byte:
		for i, x := range v {
			dst = comma(dst, i)
			dst = jsonwire.AppendString(dst, string(x))
		}
	}
	return append(dst, ']')
}

func comma(dst []byte, i int) []byte {
	if i > 0 {
		return append(dst, ',')
	}
	return dst
}

func appendInts[T int8 | int16 | int32](dst []byte, v []T) []byte {
	for i, x := range v {
		dst = comma(dst, i)
		dst = strconv.AppendInt(dst, int64(x), 10)
	}
	return dst
}

func appendUints[T uint8 | uint32](dst []byte, v []T) []byte {
	for i, x := range v {
		dst = comma(dst, i)
		dst = strconv.AppendUint(dst, uint64(x), 10)
	}
	return dst
}

// ServerMetadata is the GET /v2 document.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata describes one input or output in model metadata.
type TensorMetadata struct {
	Name       string            `json:"name"`
	Datatype   string            `json:"datatype"`
	Shape      []int64           `json:"shape"`
	Parameters *TensorParameters `json:"parameters,omitempty"`
}

// TensorParameters are tensor facts beyond the protocol's own fields.
type TensorParameters struct {
	// Unused marks a column the model's pipeline drops: it must be sent, in
	// any datatype, and its values are not read.
	Unused bool `json:"unused,omitempty"`
}

// ModelMetadata is the GET /v2/models/{name} document.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
	// Parameters carries Tide's additions; the protocol allows extra members.
	Parameters *ModelParameters `json:"parameters,omitempty"`
}

// ModelParameters are model facts beyond the protocol's own fields.
type ModelParameters struct {
	// Features names a tabular model's input columns in order (what /predict takes).
	Features []string `json:"features,omitempty"`
}

// NewModelMetadata builds the metadata document for a model.
func NewModelMetadata(name string, versions []string, md model.Metadata) ModelMetadata {
	out := ModelMetadata{Name: name, Versions: versions, Platform: md.Platform,
		Inputs: specs(md.Inputs), Outputs: specs(md.Outputs)}
	if len(md.Features) > 0 {
		out.Parameters = &ModelParameters{Features: md.Features}
	}
	return out
}

func specs(in []model.TensorSpec) []TensorMetadata {
	out := make([]TensorMetadata, len(in))
	for i, s := range in {
		shape := s.Shape
		if shape == nil {
			shape = []int64{}
		}
		out[i] = TensorMetadata{Name: s.Name, Datatype: s.Datatype.String(), Shape: shape}
		if s.Unused {
			out[i].Parameters = &TensorParameters{Unused: true}
		}
	}
	return out
}
