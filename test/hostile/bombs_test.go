package hostile

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"hash/adler32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/servertest"
)

// Compressed bombs and oversized files, each loaded through the repository API
// into a fresh tide-server whose memory is read from /proc: the load must be
// refused with a 422 that names the budget, the process's peak RSS must stay
// within the budget plus 64 MiB, and its RSS must fall back to within 32 MiB of
// idle in 5 s.

const (
	bombBudget = 256 << 20
	peakSlack  = 64 << 20
	idleSlack  = 32 << 20
	segment    = 64 << 20 // zeros per repeated piece of a bomb
)

// zeroBomb writes a stream of prefix, n×64 MiB of zeros, then suffix, compressed
// as zlib or gzip without compressing gigabytes: deflate blocks are byte-aligned
// after a flush, and a piece that encodes 64 MiB of zeros after zeros decodes
// the same wherever it is repeated, since its back-references only ever reach
// zeros. zlib's trailing Adler-32 is recomputed for the whole; gzip's CRC is left
// as is (a bomb is refused long before its end, and Go and Python both check the
// trailer only there).
func zeroBomb(t *testing.T, kind string, prefix []byte, n int, suffix []byte) []byte {
	t.Helper()
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(prefix)
	fw.Flush()
	a := deflated.Len()
	fw.Write(make([]byte, segment))
	fw.Flush()
	b := deflated.Len()
	fw.Write(suffix)
	fw.Close()
	raw := deflated.Bytes()
	body := append([]byte(nil), raw[:b]...)
	for i := 1; i < n; i++ {
		body = append(body, raw[a:b]...)
	}
	body = append(body, raw[b:]...)

	var out bytes.Buffer
	switch kind {
	case "zlib":
		out.Write([]byte{0x78, 0xda}) // deflate, 32 KiB window, best compression
		out.Write(body)
		sum := adler32.New()
		sum.Write(prefix)
		zeros := make([]byte, segment)
		for i := 0; i < n; i++ {
			sum.Write(zeros)
		}
		sum.Write(suffix)
		out.Write(binary.BigEndian.AppendUint32(nil, sum.Sum32()))
	case "gzip":
		out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255})
		out.Write(body)
		out.Write(make([]byte, 8)) // CRC-32 and size, never reached
	default:
		t.Fatalf("kind %s", kind)
	}
	return out.Bytes()
}

// plainFraudPickle is the fraud model's joblib stream, decompressed.
func plainFraudPickle(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("../../internal/server/testdata/fraud_logreg.joblib")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zlib.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// procMemory reads VmRSS and VmHWM (the peak) of a process, in bytes.
func procMemory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

func TestBombsStayWithinTheLoadBudget(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	bin := servertest.Build(t)
	model := plainFraudPickle(t)
	// PROTO 4, BINBYTES8 of 1.5 GiB: zeros the stream then POPs, before a valid
	// model. Without a budget this file loads, and its 1.5 GiB stays resident.
	bytes8 := append([]byte{0x80, 4, 0x8e}, binary.LittleEndian.AppendUint64(nil, 24*segment)...)
	popThenModel := append([]byte{'0'}, model[2:]...)

	bombs := []struct {
		name, file string
		content    func() []byte
	}{
		{"zlib pickle with 1.5 GiB of bytes before a valid model", "model.joblib",
			func() []byte { return zeroBomb(t, "zlib", bytes8, 24, popThenModel) }},
		{"zlib 4 GiB of zeros", "model.joblib", func() []byte { return zeroBomb(t, "zlib", nil, 64, nil) }},
		{"gzip 4 GiB of zeros", "model.joblib", func() []byte { return zeroBomb(t, "gzip", nil, 64, nil) }},
		// Files whose measured decoding cost is over the budget are refused
		// before they are read.
		{"20 MB XGBoost JSON", "model.json", func() []byte { return bytes.Repeat([]byte(" "), 20<<20) }},
		{"100 MB ONNX", "model.onnx", func() []byte { return make([]byte, 100<<20) }},
		{"60 MB LightGBM text", "model.txt", func() []byte { return append([]byte("tree\n"), bytes.Repeat([]byte(" "), 60<<20)...) }},
	}
	for _, b := range bombs {
		t.Run(b.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "ok"), 0o755); err != nil {
				t.Fatal(err)
			}
			fraud, _ := os.ReadFile("../../internal/server/testdata/fraud_logreg.joblib")
			os.WriteFile(filepath.Join(root, "ok", "model.joblib"), fraud, 0o644)
			s := servertest.Serve(t, bin, root, "--model-control", "--watch=false",
				"--load-memory-budget", strconv.Itoa(bombBudget), "--log-level", "warn")
			pid := s.Cmd.Process.Pid
			time.Sleep(200 * time.Millisecond)
			idle, _ := procMemory(t, pid)

			dir := filepath.Join(root, "bomb")
			os.MkdirAll(dir, 0o755)
			if strings.HasSuffix(b.file, ".json") {
				os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("format: xgboost\n"), 0o644)
			}
			content := b.content()
			if err := os.WriteFile(filepath.Join(dir, b.file), content, 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := http.Post("http://"+s.HTTP+"/v2/repository/models/bomb/load", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "memory budget") ||
				strings.Contains(string(body), root) {
				t.Fatalf("load: %d %s; want 422 naming the budget and no server path", resp.StatusCode, body)
			}
			_, peak := procMemory(t, pid)
			var rss int64
			deadline := time.Now().Add(5 * time.Second)
			for {
				rss, _ = procMemory(t, pid)
				if rss <= idle+idleSlack || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%d-byte file refused in %v: idle RSS %d MiB, peak %d MiB (budget %d MiB), after %d MiB",
				len(content), took.Round(time.Millisecond), idle>>20, peak>>20, bombBudget>>20, rss>>20)
			if peak > bombBudget+peakSlack {
				t.Errorf("peak RSS %d MiB is over the budget + 64 MiB", peak>>20)
			}
			if rss > idle+idleSlack {
				t.Errorf("RSS %d MiB 5 s after the refusal, idle was %d MiB", rss>>20, idle>>20)
			}
			stillServesModel(t, s.HTTP, "ok")
		})
	}
}

// stillServesModel checks that a model answers after a refused load.
func stillServesModel(t *testing.T, addr, name string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v2/models/"+name+"/infer", "application/json", strings.NewReader(oneRow))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("model %s answers %d after the refused load", name, resp.StatusCode)
	}
}

// The bomb construction is sound: the same file with 64 MiB of bytes instead of
// 1.5 GiB loads and serves under a budget that holds it, so what refuses the
// bombs above is the budget, not a broken stream.
func TestBombConstructionLoadsWhenItFits(t *testing.T) {
	bin := servertest.Build(t)
	model := plainFraudPickle(t)
	bytes8 := append([]byte{0x80, 4, 0x8e}, binary.LittleEndian.AppendUint64(nil, segment)...)
	root := t.TempDir()
	dir := filepath.Join(root, "bomb")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "model.joblib"), zeroBomb(t, "zlib", bytes8, 1, append([]byte{'0'}, model[2:]...)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := servertest.Serve(t, bin, root, "--load-memory-budget", "512Mi", "--log-level", "warn")
	stillServesModel(t, s.HTTP, "bomb")

	s = servertest.Start(t, bin, root, "--load-memory-budget", "128Mi", "--load-cpu-share", "50%")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs(), "model failed to load") && !strings.Contains(s.Logs(), "model loaded") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.Logs(), "model failed to load") || !strings.Contains(s.Logs(), "128 MiB memory budget") {
		t.Fatalf("under 128Mi the same file should fail on the budget; log:\n%s", s.Logs())
	}
	if !strings.Contains(s.Logs(), `msg="model load CPU share" share_of_one_cpu=0.5`) {
		t.Errorf("the start-up log does not state the loads' CPU share:\n%s", s.Logs())
	}
}
