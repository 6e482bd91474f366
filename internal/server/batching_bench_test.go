package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/batcher"
	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/onnx"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tensor"
)

// The dynamic batching benchmarks: 64 concurrent callers, each sending one row at
// a time, batching off and on, on two ONNX MLPs (torch-exported, see
// ../formats/onnx/testdata/gen_torch.py):
//
//   - mlp: 32-64-64-10, ~6.8k weights. A one-row run is almost all per-call
//     overhead in ONNX Runtime and the cgo call; a batch of 64 rows costs ~30x
//     less per row.
//   - mlp256: 64-256-256-256-10, ~150k weights. Its arithmetic shows: a batch of 64
//     costs ~6x less per row than one row.
//
// ONNX Runtime runs with one intra-op thread (TIDE_BENCH_ONNX_THREADS overrides;
// 0 lets ONNX Runtime choose), the setting for a server with many concurrent
// requests, and two model runs at once (max_inflight: 2), one per core here.
// Batching runs in two sizes: batched-64 takes all 64 callers into one run, so
// one run is in flight at a time and the second core has only the callers'
// handoffs to do; batched-32 lets two runs of half the callers overlap, one per
// core, which pays once a run costs more than handing its callers back.
// Every sub-benchmark reports requests per second and the callers' p50 and p99.
//
//	go test ./internal/server -run '^$' -bench 'DynamicBatchingONNX' -benchtime 400000x
//	go test ./internal/server -run '^$' -bench 'DynamicBatchingHTTP' -benchtime 20000x

const batchingCallers = 64

var batchingModels = []struct {
	name, file string
	width      int
}{
	{"mlp", "mlp.onnx", 32},
	{"mlp256", "mlp256.onnx", 64},
}

var batchingModes = []struct {
	name string
	cfg  batcher.Config
}{
	{"unbatched", batcher.Config{MaxInFlight: 2, MaxQueue: 1024}},
	{"batched-64", batcher.Config{MaxBatchSize: 64, MaxQueueDelay: 2 * time.Millisecond, MaxInFlight: 2, MaxQueue: 1024}},
	{"batched-32", batcher.Config{MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxInFlight: 2, MaxQueue: 1024}},
}

// configFile is cfg as a model's config.yaml, for the benchmark's server
// process: written from the Config so that the two cannot disagree.
func configFile(cfg batcher.Config) string {
	s := fmt.Sprintf("batching:\n  max_inflight: %d\n  max_queue: %d\n", cfg.MaxInFlight, cfg.MaxQueue)
	if cfg.Batching() {
		s += fmt.Sprintf("  max_batch_size: %d\n  max_queue_delay: %s\n", cfg.MaxBatchSize, cfg.MaxQueueDelay)
	}
	return s
}

// setBenchONNXOptions sets the ONNX session options the batching benchmarks use and
// returns how to put the defaults back.
func setBenchONNXOptions(tb testing.TB) func() {
	threads := 1
	if v := os.Getenv("TIDE_BENCH_ONNX_THREADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("TIDE_BENCH_ONNX_THREADS=%q: %v", v, err)
		}
		threads = n
	}
	if err := onnx.SetOptions(onnx.Options{IntraOpThreads: threads}); err != nil {
		tb.Fatal(err)
	}
	return func() { onnx.SetOptions(onnx.Options{}) }
}

func oneRowInput(width, caller int) []float32 {
	x := make([]float32, width)
	for i := range x {
		x[i] = float32(math.Sin(float64(caller*width + i)))
	}
	return x
}

// BenchmarkDynamicBatchingONNX: the callers call the batcher in-process, as the
// server's handlers do, so the figures are the batcher and the model alone.
func BenchmarkDynamicBatchingONNX(b *testing.B) {
	defer setBenchONNXOptions(b)()
	rt, _ := formats.Lookup("onnx")
	for _, mdl := range batchingModels {
		path := filepath.Join("..", "formats", "onnx", "testdata", mdl.file)
		m, err := rt.Loader.Load(context.Background(), path, formats.Config{Name: mdl.name})
		if err != nil {
			b.Skipf("ONNX Runtime not available: %v", err)
		}
		for _, mode := range batchingModes {
			b.Run(mdl.name+"/"+mode.name, func(b *testing.B) {
				bt, err := batcher.New(m.Predict, mode.cfg, batcher.Hooks{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				runCallers(b, func(g int) (func() error, error) {
					in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP32, Shape: []int64{1, int64(mdl.width)}, Data: oneRowInput(mdl.width, g)}}
					return func() error {
						out, err := bt.Do(context.Background(), in)
						if err == nil && out[0].Rows() != 1 {
							err = fmt.Errorf("%d rows back for 1", out[0].Rows())
						}
						return err
					}, nil
				})
			})
		}
		m.(model.Closer).Close()
	}
}

// BenchmarkDynamicBatchingHTTP: the same through a real server over loopback TCP:
// OIP REST JSON requests (POST /v2/models/<model>/infer), 64 clients with a
// keep-alive connection each. The server runs in a child process (this test
// binary, see TestBatchingBenchServerProcess), so its CPU time is measured apart
// from the clients': srv-CPU-µs/req is server CPU per request and req/srv-CPU-s
// its inverse, which other work on the machine disturbs least.
func BenchmarkDynamicBatchingHTTP(b *testing.B) {
	for _, mdl := range batchingModels {
		for _, mode := range batchingModes {
			b.Run(mdl.name+"/"+mode.name, func(b *testing.B) {
				root := b.TempDir()
				dir := filepath.Join(root, mdl.name)
				src, err := os.ReadFile(filepath.Join("..", "formats", "onnx", "testdata", mdl.file))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "model.onnx"), src, 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(configFile(mode.cfg)), 0o644); err != nil {
					b.Fatal(err)
				}
				srv := startBenchServerProcess(b, root)
				url := "http://" + srv.addr + "/v2/models/" + mdl.name + "/infer"
				client := &http.Client{Transport: &http.Transport{
					MaxIdleConnsPerHost: batchingCallers, MaxConnsPerHost: batchingCallers, DisableCompression: true,
				}}
				defer client.CloseIdleConnections()
				cpu0 := srv.cpu(b)
				runCallers(b, func(g int) (func() error, error) {
					body := oneRowJSON(oneRowInput(mdl.width, g))
					buf := make([]byte, 0, 512)
					post := func() error {
						resp, err := client.Post(url, "application/json", bytes.NewReader(body))
						if err != nil {
							return err
						}
						defer resp.Body.Close()
						w := bytes.NewBuffer(buf[:0])
						if _, err := io.Copy(w, resp.Body); err != nil {
							return err
						}
						if resp.StatusCode != http.StatusOK || !bytes.Contains(w.Bytes(), []byte(`"shape":[1,10]`)) {
							return fmt.Errorf("%s: %s", resp.Status, w.Bytes())
						}
						return nil
					}
					return post, post() // one request to open the connection before the clock starts
				})
				cpu := srv.cpu(b) - cpu0
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "srv-CPU-µs/req")
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "req/srv-CPU-s")
			})
		}
	}
}

func oneRowJSON(x []float32) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"inputs":[{"name":"input","shape":[1,%d],"datatype":"FP32","data":[`, len(x))
	for i, v := range x {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	sb.WriteString(`]}]}`)
	return []byte(sb.String())
}

// runCallers runs b.N requests from batchingCallers goroutines, each sending its
// next request when the last is answered, and reports req/s, p50 and p99. setup
// prepares one caller (outside the timed part) and returns its request.
func runCallers(b *testing.B, setup func(caller int) (func() error, error)) {
	per := max(b.N/batchingCallers, 1)
	calls := make([]func() error, batchingCallers)
	for g := range calls {
		call, err := setup(g)
		if err != nil {
			b.Fatal(err)
		}
		calls[g] = call
	}
	lat := make([][]time.Duration, batchingCallers)
	for g := range lat {
		lat[g] = make([]time.Duration, 0, per)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				t0 := time.Now()
				if err := calls[g](); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := make([]time.Duration, 0, per*batchingCallers)
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// benchServerProcess is a Tide server in a child process.
type benchServerProcess struct {
	addr string
	pid  int
}

const benchServerRootEnv = "TIDE_BENCH_SERVER_ROOT"

// startBenchServerProcess starts this test binary as a server of the repository
// at root and stops it when the benchmark ends.
func startBenchServerProcess(b *testing.B, root string) *benchServerProcess {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBatchingBenchServerProcess$")
	cmd.Env = append(os.Environ(), benchServerRootEnv+"="+root)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the server's cue to exit
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		b.Fatalf("server process said %q", line)
	}
	go io.Copy(io.Discard, stdout)
	return &benchServerProcess{addr: addr, pid: cmd.Process.Pid}
}

// cpu is the CPU time (user + system) the server process has used so far.
func (p *benchServerProcess) cpu(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and stime are
	// the 14th and 15th fields of the whole line, in clock ticks (100 per second).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestBatchingBenchServerProcess is the server side of BenchmarkDynamicBatchingHTTP,
// run in a child process; on its own it does nothing.
func TestBatchingBenchServerProcess(t *testing.T) {
	root := os.Getenv(benchServerRootEnv)
	if root == "" {
		t.Skip("the server process of BenchmarkDynamicBatchingHTTP")
	}
	defer setBenchONNXOptions(t)()
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	if !s.IsReady() {
		t.Fatalf("not ready: %+v", repo.Index())
	}
	defer s.repo.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	go hs.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes our stdin
	hs.Close()
}
