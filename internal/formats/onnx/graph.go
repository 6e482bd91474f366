package onnx

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
)

// The parts of a ModelProto that Tide reads itself: the main graph's nodes
// (operator, domain, inputs, outputs, attributes) and its output names. ONNX
// Runtime does the real parsing; this view exists for fix-ups that need to
// know which operator produced an output, and for reporting conformance per
// operator.

// Field numbers in onnx.proto.
const (
	modelGraph = 7

	graphNode        = 1
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType  = 1 // TypeProto.tensor_type
	tensorTypeShape = 2 // TypeProto.Tensor.shape

	nodeInput     = 1
	nodeOutput    = 2
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrFloats  = 7
	attrInts    = 8
	attrStrings = 9
)

type graphView struct {
	nodes []nodeView
	// inputs and outputs are the graph's, in order. Inputs include those with
	// an initializer (a default), which ONNX Runtime does not list as inputs.
	inputs, outputs []valueInfo
}

// valueInfo is a graph input or output.
type valueInfo struct {
	name string
	// unknownRank is set for a tensor declared without a shape: any rank is
	// allowed. (ONNX Runtime reports such a tensor with no dimensions, the
	// same as a scalar.)
	unknownRank bool
}

type nodeView struct {
	opType  string
	domain  string
	inputs  []string
	outputs []string
	attrs   map[string]attrView
}

// attrView keeps the attribute kinds the fix-ups need.
type attrView struct {
	f       float32
	i       int64
	s       []byte
	ints    []int64
	floats  []float32
	strings [][]byte
}

// parseGraph reads the main graph of a serialized ModelProto.
func parseGraph(model []byte) (*graphView, error) {
	var g graphView
	found := false
	err := onnxproto.ForEachField(model, func(f onnxproto.Field) error {
		if f.Number != modelGraph {
			return nil
		}
		b, err := f.Message()
		if err != nil {
			return err
		}
		found = true
		return g.read(b)
	})
	if err != nil {
		return nil, fmt.Errorf("ModelProto: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("ModelProto has no graph")
	}
	return &g, nil
}

func (g *graphView) read(b []byte) error {
	return onnxproto.ForEachField(b, g.add)
}

// add records one GraphProto field.
func (g *graphView) add(f onnxproto.Field) error {
	switch f.Number {
	case graphNode:
		m, err := f.Message()
		if err != nil {
			return err
		}
		n, err := readNode(m)
		if err != nil {
			return err
		}
		g.nodes = append(g.nodes, n)
	case graphInput, graphOutput:
		m, err := f.Message()
		if err != nil {
			return err
		}
		vi, err := readValueInfo(m)
		if err != nil {
			return err
		}
		if f.Number == graphInput {
			g.inputs = append(g.inputs, vi)
		} else {
			g.outputs = append(g.outputs, vi)
		}
	}
	return nil
}

func readValueInfo(b []byte) (valueInfo, error) {
	var vi valueInfo
	err := onnxproto.ForEachField(b, func(f onnxproto.Field) error {
		if f.Number != valueInfoName && f.Number != valueInfoType {
			return nil
		}
		m, err := f.Message()
		if err != nil {
			return err
		}
		switch f.Number {
		case valueInfoName:
			vi.name = string(m)
		case valueInfoType:
			return onnxproto.ForEachField(m, func(f onnxproto.Field) error {
				if f.Number != typeTensorType {
					return nil
				}
				t, err := f.Message()
				if err != nil {
					return err
				}
				vi.unknownRank = true
				return onnxproto.ForEachField(t, func(f onnxproto.Field) error {
					if f.Number == tensorTypeShape {
						vi.unknownRank = false
					}
					return nil
				})
			})
		}
		return nil
	})
	return vi, err
}

func readNode(b []byte) (nodeView, error) {
	n := nodeView{attrs: map[string]attrView{}}
	err := onnxproto.ForEachField(b, func(f onnxproto.Field) error {
		switch f.Number {
		case nodeInput, nodeOutput, nodeOpType, nodeDomain:
			s, err := f.Message()
			if err != nil {
				return err
			}
			switch f.Number {
			case nodeInput:
				n.inputs = append(n.inputs, string(s))
			case nodeOutput:
				n.outputs = append(n.outputs, string(s))
			case nodeOpType:
				n.opType = string(s)
			case nodeDomain:
				n.domain = string(s)
			}
		case nodeAttribute:
			m, err := f.Message()
			if err != nil {
				return err
			}
			name, a, err := readAttr(m)
			if err != nil {
				return err
			}
			n.attrs[name] = a
		}
		return nil
	})
	return n, err
}

func readAttr(b []byte) (string, attrView, error) {
	var name string
	var a attrView
	err := onnxproto.ForEachField(b, func(f onnxproto.Field) error {
		var err error
		switch f.Number {
		case attrName:
			var s []byte
			s, err = f.Message()
			name = string(s)
		case attrF:
			var bits []uint32
			if bits, err = f.Fixed32s(nil); err == nil && len(bits) > 0 {
				a.f = math.Float32frombits(bits[0])
			}
		case attrI:
			a.i = int64(f.Num)
		case attrS:
			a.s, err = f.Message()
		case attrInts:
			var v []uint64
			if v, err = f.Varints(nil); err == nil {
				for _, x := range v {
					a.ints = append(a.ints, int64(x))
				}
			}
		case attrFloats:
			var bits []uint32
			if bits, err = f.Fixed32s(nil); err == nil {
				for _, x := range bits {
					a.floats = append(a.floats, math.Float32frombits(x))
				}
			}
		case attrStrings:
			var s []byte
			if s, err = f.Message(); err == nil {
				a.strings = append(a.strings, s)
			}
		}
		return err
	})
	return name, a, err
}

// maxGraphMessage bounds one node or value info read by scanModelFile. A
// larger node is a Constant holding weights, which no fix-up needs.
const maxGraphMessage = 16 << 20

// scanModelFile reads the graph view of a model file in one pass without
// holding the file in memory: the weights (initializers) are read past, not
// kept, so a multi-gigabyte network costs a sequential read and little else.
func scanModelFile(path string) (*graphView, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var g *graphView
	err = onnxproto.ScanFields(r, func(num, wire int, length uint64) (bool, error) {
		if num != modelGraph || wire != onnxproto.WireBytes {
			return false, nil
		}
		if g == nil {
			g = &graphView{} // repeated graph fields merge, as in protobuf
		}
		inner := bufio.NewReaderSize(io.LimitReader(r, int64(length)), 64<<10)
		return true, onnxproto.ScanFields(inner, func(num, wire int, length uint64) (bool, error) {
			if wire != onnxproto.WireBytes || length > maxGraphMessage || (num != graphNode && num != graphInput && num != graphOutput) {
				return false, nil
			}
			msg := make([]byte, length)
			if _, err := io.ReadFull(inner, msg); err != nil {
				return true, err
			}
			return true, g.add(onnxproto.Field{Number: num, Wire: onnxproto.WireBytes, Bytes: msg})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("ModelProto: %w", err)
	}
	if g == nil {
		return nil, fmt.Errorf("ModelProto has no graph")
	}
	return g, nil
}
