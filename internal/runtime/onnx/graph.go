package onnx

import (
	"fmt"
	"math"
)

// The parts of a ModelProto that Tide reads itself: the main graph's nodes
// (operator, domain, inputs, outputs, attributes) and its output names. ONNX
// Runtime does the real parsing; this view exists for fix-ups that need to
// know which operator produced an output, and for reporting conformance per
// operator.

// Field numbers in onnx.proto.
const (
	modelGraph = 7

	graphNode   = 1
	graphOutput = 12

	valueInfoName = 1

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
	nodes   []nodeView
	outputs []string
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
	err := forEachField(model, func(f field) error {
		if f.number != modelGraph {
			return nil
		}
		b, err := f.message()
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
	return forEachField(b, func(f field) error {
		switch f.number {
		case graphNode:
			m, err := f.message()
			if err != nil {
				return err
			}
			n, err := readNode(m)
			if err != nil {
				return err
			}
			g.nodes = append(g.nodes, n)
		case graphOutput:
			m, err := f.message()
			if err != nil {
				return err
			}
			name := ""
			err = forEachField(m, func(f field) error {
				if f.number == valueInfoName {
					b, err := f.message()
					name = string(b)
					return err
				}
				return nil
			})
			if err != nil {
				return err
			}
			g.outputs = append(g.outputs, name)
		}
		return nil
	})
}

func readNode(b []byte) (nodeView, error) {
	n := nodeView{attrs: map[string]attrView{}}
	err := forEachField(b, func(f field) error {
		switch f.number {
		case nodeInput, nodeOutput, nodeOpType, nodeDomain:
			s, err := f.message()
			if err != nil {
				return err
			}
			switch f.number {
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
			m, err := f.message()
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
	err := forEachField(b, func(f field) error {
		var err error
		switch f.number {
		case attrName:
			var s []byte
			s, err = f.message()
			name = string(s)
		case attrF:
			var bits []uint32
			if bits, err = f.fixed32s(nil); err == nil && len(bits) > 0 {
				a.f = math.Float32frombits(bits[0])
			}
		case attrI:
			a.i = int64(f.num)
		case attrS:
			a.s, err = f.message()
		case attrInts:
			var v []uint64
			if v, err = f.varints(nil); err == nil {
				for _, x := range v {
					a.ints = append(a.ints, int64(x))
				}
			}
		case attrFloats:
			var bits []uint32
			if bits, err = f.fixed32s(nil); err == nil {
				for _, x := range bits {
					a.floats = append(a.floats, math.Float32frombits(x))
				}
			}
		case attrStrings:
			var s []byte
			if s, err = f.message(); err == nil {
				a.strings = append(a.strings, s)
			}
		}
		return err
	})
	return name, a, err
}
