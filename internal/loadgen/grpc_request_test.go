package loadgen

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestGRPCRequestsFromTemplates: the generated template for a model becomes a
// fresh request per call, and a static body one request for every call.
func TestGRPCRequestsFromTemplates(t *testing.T) {
	md := &ModelMetadata{Name: "fraud", Inputs: []TensorMeta{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 3}}}}
	src, err := TemplateFor(ProtocolGRPC, md, 2)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{Protocol: ProtocolGRPC, Model: "fraud"}
	g, err := newGRPCRequests(tpl, tg, false)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	a, _ := g.next(rng, 0)
	b, _ := g.next(rng, 1)
	if a.ModelName != "fraud" || fmt.Sprint(a.Inputs[0].Shape) != "[2 3]" || len(a.Inputs[0].Contents.Fp32Contents) != 6 || proto.Equal(a, b) {
		t.Errorf("generated requests %v and %v", a, b)
	}
	s, err := newGRPCRequests(StaticBody(`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`), tg, true)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := s.next(rng, 0); x != s.fixed || len(x.RawInputContents) != 1 {
		t.Errorf("static body: %v", x)
	}
	if _, err := newGRPCRequests(nil, tg, false); err == nil {
		t.Error("no body: no error")
	}
}

// BenchmarkGRPCRequest is the generator's cost per gRPC call against that of
// rendering the same OIP JSON body for REST: the conversion is the difference.
func BenchmarkGRPCRequest(b *testing.B) {
	md := &ModelMetadata{Name: "fraud", Inputs: []TensorMeta{{Name: "input", Datatype: "FP64", Shape: []int64{-1, 2}}}}
	for _, rows := range []int{1, 100} {
		src, _ := TemplateFor(ProtocolGRPC, md, rows)
		tpl, _ := ParseTemplate(src)
		rng := rand.New(rand.NewPCG(1, 2))
		b.Run(fmt.Sprintf("rows=%d/REST render", rows), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tpl.Render(nil, rng, uint64(i))
			}
		})
		b.Run(fmt.Sprintf("rows=%d/gRPC render+convert", rows), func(b *testing.B) {
			g, err := newGRPCRequests(tpl, Target{Protocol: ProtocolGRPC, Model: "fraud"}, false)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := g.next(rng, uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
