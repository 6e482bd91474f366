package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/oip/pb"
)

// BenchmarkGRPCInferServer measures the server alone: its client is another
// process (this test binary again, as grpcBenchClient), so -benchmem's
// allocations per call are the server's (gRPC's transport, Tide's code and the
// model), with none of the client's. The client makes its calls one after
// another on one connection, as BenchmarkGRPCInfer's does.
func BenchmarkGRPCInferServer(b *testing.B) {
	addr := serveGRPC(b, benchServer(b, "fraud_logreg.joblib"))
	client := exec.Command(os.Args[0], "-test.run=^TestGRPCBenchClient$")
	client.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", grpcBenchClientEnv, addr, b.N))
	client.Stderr = os.Stderr
	in, err := client.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := client.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Start(); err != nil {
		b.Fatal(err)
	}
	defer client.Wait()
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		for lines.Scan() { // the test framework's own lines pass by
			if lines.Text() == want {
				return
			}
		}
		b.Fatalf("the client process ended before saying %q", want)
	}
	expect("warm") // a connection made and calls answered, outside the figure
	b.ReportAllocs()
	b.ResetTimer()
	fmt.Fprintln(in, "go")
	expect("done")
	b.StopTimer()
	in.Close()
}

const grpcBenchClientEnv = "TIDE_GRPC_BENCH_CLIENT"

// TestGRPCBenchClient is BenchmarkGRPCInferServer's client process; run
// otherwise, it does nothing.
func TestGRPCBenchClient(t *testing.T) {
	spec := os.Getenv(grpcBenchClientEnv)
	if spec == "" {
		t.Skip("the client process of BenchmarkGRPCInferServer")
	}
	addr, count, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	req := inferReq("fraud_logreg", fp64Input("input", []int64{1, 2}, 0.5, -1.2))
	call := func() {
		if _, err := c.ModelInfer(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		call()
	}
	fmt.Println("warm")
	if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != "go\n" {
		t.Fatalf("told %q, not to go", line)
	}
	for i := 0; i < n; i++ {
		call()
	}
	fmt.Println("done")
}

// TestGRPCPooledCallsKeepTheirOwn: ModelInfer calls decode into pooled
// memory, so calls side by side, of different sizes, with and without raw
// contents, ids and requested outputs, and failing ones among them, must each
// get the answer their own request gets alone.
func TestGRPCPooledCallsKeepTheirOwn(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	var reqs []*pb.ModelInferRequest
	for i := range 12 {
		rows := 1 + i%4
		v := make([]float64, 2*rows)
		for j := range v {
			v[j] = float64(i*10+j) / 7
		}
		req := inferReq("fraud", fp64Input("input", []int64{int64(rows), 2}, v...))
		if i%3 == 1 {
			req.Inputs[0].Contents = nil
			req.RawInputContents = [][]byte{fp64le(v...)}
		}
		if i%2 == 0 {
			req.Id = fmt.Sprintf("call-%d", i)
		}
		if i%4 == 3 {
			req.ModelName = "no-such-model"
		}
		reqs = append(reqs, req)
	}
	alone := make([]string, len(reqs))
	for i, req := range reqs {
		alone[i] = answerText(c.ModelInfer(t.Context(), req))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 150 {
				i := (g*7 + k*5) % len(reqs)
				if got := answerText(c.ModelInfer(context.Background(), reqs[i])); got != alone[i] {
					errs <- fmt.Errorf("request %d side by side:\n%s\nalone:\n%s", i, got, alone[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// answerText is a call's outcome as text to compare, leaving out the id a
// request without one is given.
func answerText(resp *pb.ModelInferResponse, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if !strings.HasPrefix(resp.Id, "call-") {
		resp.Id = ""
	}
	return prototext.Format(resp)
}

// FuzzGRPCModelInfer feeds any bytes to ModelInfer as the server takes them
// (the codec, the interceptor, the handler, pooled calls carried from one
// input to the next): an answer or a caller's error, never a panic or an
// internal error, and a good call after each still gets its own answer.
func FuzzGRPCModelInfer(f *testing.F) {
	for _, seed := range inferCallSeedsForServer(f) {
		f.Add(seed)
	}
	s := newTestServer(f, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	codec := newLenientCodec()
	intercept := s.grpcUnary(codec, s.newGRPCAuth())
	svc := newInferenceService(s)
	call := func(b []byte) (*pb.ModelInferResponse, error) {
		data := mem.BufferSlice{mem.SliceBuffer(b)}
		ctx := grpc.NewContextWithServerTransportStream(context.Background(), &headerStream{})
		answer, err := svc.handleModelInfer(ctx, func(v any) error { return codec.Unmarshal(data, v) }, intercept)
		if err != nil {
			return nil, err
		}
		out, err := codec.Marshal(answer)
		if err != nil {
			return nil, err
		}
		defer out.Free()
		var resp pb.ModelInferResponse
		return &resp, proto.Unmarshal(out.Materialize(), &resp)
	}
	good, err := proto.Marshal(inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0)))
	if err != nil {
		f.Fatal(err)
	}
	want, err := call(good)
	if err != nil {
		f.Fatal(err)
	}
	want.Id = ""
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := call(b); err != nil {
			switch status.Code(err) {
			case codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted:
			default:
				t.Fatalf("%v", err)
			}
		}
		got, err := call(good)
		if err != nil {
			t.Fatal(err)
		}
		got.Id = ""
		if !proto.Equal(got, want) {
			t.Fatalf("a good call after %x: %v, want %v", b, got, want)
		}
	})
}

// inferCallSeedsForServer are requests for the fuzzed server's model, with and
// without raw contents, requested outputs and ids.
func inferCallSeedsForServer(tb testing.TB) [][]byte {
	raw := inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP64", Shape: []int64{2, 2}})
	raw.RawInputContents = [][]byte{fp64le(1, 0, 0.5, 2)}
	named := inferReq("fraud", fp64Input("input", []int64{1, 2}, 3, 4))
	named.Id, named.Outputs = "x", []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}
	var seeds [][]byte
	for _, m := range []*pb.ModelInferRequest{raw, named, inferReq("fraud", fp64Input("input", []int64{3}, 1, 2, 3)), {}} {
		b, err := proto.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// The server's flow-control windows are fixed at room for its largest
// request (grpcWindow): requests far over HTTP/2's default window of 64 KiB
// and up to the limit are answered, one over it is refused, and the window
// stays within HTTP/2's default and gRPC's own ceiling however the limit is set.
func TestGRPCWindowsFitTheLargestRequest(t *testing.T) {
	for _, c := range []struct{ maxBody, want int64 }{
		{1 << 10, 64 << 10}, {64 << 10, 64<<10 + 5}, {1 << 20, 1<<20 + 5}, {16 << 20, 16 << 20}, {1 << 40, 16 << 20},
	} {
		if got := grpcWindow(c.maxBody); int64(got) != c.want {
			t.Errorf("grpcWindow(%d) = %d, want %d", c.maxBody, got, c.want)
		}
	}
	const limit = 1 << 20
	s := newTestServer(t, Options{MaxBodyBytes: limit}, map[string]formatstest.Spec{"fraud": fraud})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	request := func(rows int) *pb.ModelInferRequest {
		v := make([]float64, 2*rows)
		for i := range v {
			v[i] = float64(i%7) - 3
		}
		return &pb.ModelInferRequest{ModelName: "fraud",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{int64(rows), 2}}},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "predict"}},
			RawInputContents: [][]byte{fp64le(v...)}}
	}
	for _, rows := range []int{4096, 65000} { // 64 KiB, and just under 1 MiB
		req := request(rows)
		if size := proto.Size(req); size > limit {
			t.Fatalf("%d rows make %d bytes, over the limit", rows, size)
		}
		r, err := c.ModelInfer(t.Context(), req)
		if err != nil || len(r.GetRawOutputContents()) != 1 || len(r.GetRawOutputContents()[0]) != 8*rows {
			t.Fatalf("%d rows: %v", rows, err)
		}
	}
	_, err := c.ModelInfer(t.Context(), request(70000)) // 1.07 MiB
	wantCode(t, err, codes.ResourceExhausted, "larger than max")
}
