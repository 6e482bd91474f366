package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/server"
	"github.com/tideserve/tide/internal/serving"
)

// These tests drive `tide load` at the real Tide server, started in-process with
// HTTP and gRPC on loopback ports, as `tide serve` starts it.

const fraudModel = "../../internal/server/testdata/fraud_logreg.joblib"

// tideServer is a running server: its HTTP base URL and gRPC address.
type tideServer struct {
	http, grpc string
	srv        *server.Server
}

// startTide serves path (a model file or repository folder) until the test ends.
func startTide(t *testing.T, path string, opts server.Options) tideServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	repo, err := repository.Open(path, repository.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	opts.GRPCAddr = "127.0.0.1:0"
	opts.DrainTimeout = 5 * time.Second
	s := server.New(repo, opts, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.GRPCAddr() == "" || !s.IsReady() {
		if time.Now().After(deadline) {
			t.Fatal("server never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return tideServer{http: "http://" + ln.Addr().String(), grpc: s.GRPCAddr(), srv: s}
}

// grpcCalls reads the server's own count of gRPC calls for model with an
// HTTP-equivalent code, from /metrics.
func (ts tideServer) grpcCalls(t *testing.T, model, code string) int {
	t.Helper()
	resp, err := http.Get(ts.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`tide_requests_total\{code="` + code + `",model="` + model + `",protocol="oip-grpc"\} (\d+)`)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// runLoad runs `tide load args...` and returns the summary it printed (stdout
// is not a terminal, so the last line is {"summary": ...}), the text summary
// from stderr, and the command's error.
func runLoadCommand(t *testing.T, args ...string) (loadgen.Summary, string, error) {
	t.Helper()
	cmd := newLoadCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	var s loadgen.Summary
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var line struct {
			Summary *loadgen.Summary `json:"summary"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Summary != nil {
			s = *line.Summary
		}
	}
	return s, stderr.String(), err
}

const fraudBody = `{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[0.5,-1.2,3,1]}]}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadGRPC: closed and open loop over gRPC, with bodies from the model's
// metadata, a body file, a template and raw contents; every call reaches the
// server as gRPC (its own metrics count them) and answers OK.
func TestLoadGRPC(t *testing.T) {
	ts := startTide(t, fraudModel, server.Options{})
	url := "grpc://" + ts.grpc + "/models/fraud_logreg"
	body := writeFile(t, "body.json", fraudBody)
	cases := []struct {
		name string
		args []string
		open bool
		want int64 // exact count, closed loop
	}{
		{name: "closed, generated bodies", args: []string{"-c", "4", "-n", "300", "--rows", "3"}, want: 300},
		{name: "closed, one connection, body file", args: []string{"-c", "8", "-n", "200", "--grpc-conns", "1", "--body-file", body}, want: 200},
		{name: "closed, raw contents, template", args: []string{"-c", "2", "-n", "100", "--grpc-raw",
			"--template", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[{{rand -3 3}},{{normal 0 1}}]}]}`}, want: 100},
		{name: "closed, version in the URL", args: []string{"-c", "2", "-n", "50"}, want: 50},
		{name: "open loop", args: []string{"-r", "200", "-d", "1s"}, open: true},
	}
	total := int64(0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := url
			if strings.Contains(c.name, "version") {
				u += "/versions/1"
			}
			s, stderr, err := runLoadCommand(t, append(c.args, u)...)
			if err != nil {
				t.Fatalf("tide load: %v\n%s", err, stderr)
			}
			if s.Protocol != loadgen.ProtocolGRPC || s.Errors != 0 || s.OK != s.Completed || s.GRPCCodes["OK"] != s.OK || len(s.StatusCode) != 0 {
				t.Errorf("summary: protocol %s, %d ok of %d, codes %v, http %v, errors %v", s.Protocol, s.OK, s.Completed, s.GRPCCodes, s.StatusCode, s.ErrorKinds)
			}
			if c.want > 0 && (s.Sent != c.want || s.OK != c.want) {
				t.Errorf("sent %d, ok %d; want %d each", s.Sent, s.OK, c.want)
			}
			if c.open {
				if s.Mode != "open" || s.Sent < 180 || s.Sent > 201 || s.Service == nil {
					t.Errorf("open loop: mode %s, sent %d in 1 s at 200/s, service %v", s.Mode, s.Sent, s.Service)
				}
			}
			if !strings.Contains(stderr, "gRPC status distribution:\n  [OK] ") || s.BytesIn == 0 {
				t.Errorf("text summary lacks the gRPC codes, or no bytes counted (%d):\n%s", s.BytesIn, stderr)
			}
			total += s.OK
		})
	}
	if got := ts.grpcCalls(t, "fraud_logreg", "200"); int64(got) != total {
		t.Errorf("the server counted %d gRPC calls, tide load %d", got, total)
	}
}

// TestLoadGRPCCodes: calls the server refuses are counted by gRPC code, as HTTP
// statuses are, and ones that never reach it by cause.
func TestLoadGRPCCodes(t *testing.T) {
	// A model that takes 20 ms a call behind one run slot and one queue place:
	// eight workers overload it, and it sheds with RESOURCE_EXHAUSTED.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "slow"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := formatstest.Write(filepath.Join(root, "slow"), "model", formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 20}); err != nil {
		t.Fatal(err)
	}
	ts := startTide(t, root, server.Options{Admission: serving.Admission{MaxInFlight: 1, MaxQueue: 1}})
	body := writeFile(t, "body.json", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`)

	t.Run("overloaded", func(t *testing.T) {
		s, stderr, err := runLoadCommand(t, "-c", "8", "-n", "200", "grpc://"+ts.grpc+"/models/slow")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		shed, ok := s.GRPCCodes["RESOURCE_EXHAUSTED"], s.GRPCCodes["OK"]
		if shed == 0 || ok == 0 || shed+ok != 200 || s.OK != ok || s.Errors != shed {
			t.Errorf("codes %v, ok %d, errors %d; want OK and RESOURCE_EXHAUSTED adding up to 200", s.GRPCCodes, s.OK, s.Errors)
		}
		if !strings.Contains(stderr, "[RESOURCE_EXHAUSTED]") {
			t.Errorf("text summary:\n%s", stderr)
		}
	})
	t.Run("no such model", func(t *testing.T) {
		s, _, err := runLoadCommand(t, "-c", "2", "-n", "20", "--body-file", body, "grpc://"+ts.grpc+"/models/nope")
		if err == nil || !strings.Contains(err.Error(), "no request succeeded") {
			t.Errorf("error %v, want no request succeeded", err)
		}
		if s.GRPCCodes["NOT_FOUND"] != 20 || s.Errors != 20 || len(s.ErrorKinds) != 0 {
			t.Errorf("codes %v, errors %d %v; want 20 NOT_FOUND", s.GRPCCodes, s.Errors, s.ErrorKinds)
		}
	})
	t.Run("no such model, metadata", func(t *testing.T) {
		_, _, err := runLoadCommand(t, "-n", "1", "grpc://"+ts.grpc+"/models/nope")
		if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line naming NOT_FOUND", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s, _, _ := runLoadCommand(t, "-c", "2", "-n", "10", "--timeout", "2s", "--body-file", body, "grpc://"+addr+"/models/slow")
		if s.ErrorKinds["connection refused"] != 10 || len(s.GRPCCodes) != 0 {
			t.Errorf("errors %v, codes %v; want 10 connection refused", s.ErrorKinds, s.GRPCCodes)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s, _, _ := runLoadCommand(t, "-c", "1", "-n", "3", "--timeout", "5ms", "--body-file", body, "grpc://"+ts.grpc+"/models/slow")
		if s.ErrorKinds["timeout"]+s.GRPCCodes["DEADLINE_EXCEEDED"] != 3 {
			t.Errorf("errors %v, codes %v; want 3 timeouts", s.ErrorKinds, s.GRPCCodes)
		}
	})
}

// TestLoadGRPCBadInput: mistakes end in one clear line before any load.
func TestLoadGRPCBadInput(t *testing.T) {
	notJSON := writeFile(t, "body.txt", "feature1=1")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"grpc://127.0.0.1/models/m"}, "no port"},
		{[]string{"grpc://127.0.0.1:8081/"}, "the path must name the model"},
		{[]string{"grpc://127.0.0.1:8081/v2/models/m/infer"}, "want grpc://HOST:PORT/models/NAME"},
		{[]string{"--h2", "grpc://127.0.0.1:8081/models/m"}, "--h2 does not apply"},
		{[]string{"-m", "PUT", "grpc://127.0.0.1:8081/models/m"}, "--method does not apply"},
		{[]string{"--grpc-conns", "0", "grpc://127.0.0.1:8081/models/m"}, "--grpc-conns"},
		{[]string{"--grpc-raw", "http://127.0.0.1:8080/predict"}, "grpc:// URLs only"},
		{[]string{"-H", "Bad Name: x", "grpc://127.0.0.1:8081/models/m"}, "cannot be gRPC metadata"},
		{[]string{"--body-file", notJSON, "grpc://127.0.0.1:8081/models/m"}, "gRPC request from the body"},
	} {
		_, _, err := runLoadCommand(t, append([]string{"-n", "1"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("tide load %v: error %v, want one line containing %q", c.args, err, c.want)
		}
	}
}

// TestLoadGRPCS: grpcs:// speaks TLS; -k accepts a self-signed certificate, and
// without it every call fails as a TLS error, not as a server's answer.
func TestLoadGRPCS(t *testing.T) {
	cert, key := selfSignedCert(t)
	ts := startTide(t, fraudModel, server.Options{TLSCertFile: cert, TLSKeyFile: key})
	url := "grpcs://" + ts.grpc + "/models/fraud_logreg"
	body := writeFile(t, "body.json", fraudBody)
	s, stderr, err := runLoadCommand(t, "-k", "-c", "2", "-n", "20", url)
	if err != nil || s.GRPCCodes["OK"] != 20 {
		t.Fatalf("-k: %v, codes %v\n%s", err, s.GRPCCodes, stderr)
	}
	s, _, _ = runLoadCommand(t, "-c", "2", "-n", "5", "--body-file", body, url)
	var tlsErrs int64
	for k, n := range s.ErrorKinds {
		if strings.Contains(k, "x509") {
			tlsErrs += n
		}
	}
	if tlsErrs != 5 || len(s.GRPCCodes) != 0 {
		t.Errorf("without -k: errors %v, codes %v; want 5 certificate errors", s.ErrorKinds, s.GRPCCodes)
	}
}

func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tide-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

// pausingProxy forwards TCP to addr, except that nothing passes in either
// direction during [pauseAt, pauseAt+pause) after the first byte: to a client
// it looks like a server frozen for that long (a GC pause, a stopped process).
func pausingProxy(t *testing.T, addr string, pauseAt, pause time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var once sync.Once
	var begin, end time.Time
	var mu sync.Mutex
	window := func() (time.Time, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		once.Do(func() { begin = time.Now().Add(pauseAt); end = begin.Add(pause) })
		return begin, end
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if b, e := window(); time.Now().After(b) && time.Now().Before(e) {
					time.Sleep(time.Until(e))
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return ln.Addr().String()
}

// TestLoadGRPCOpenLoopSeesThePause is TestOpenLoopSeesThePause (internal/loadgen)
// over gRPC against the real server: at 200 calls/s for 3 s with the server
// frozen for the middle second, a third of the calls were due during the freeze
// and waited up to a second, and the open loop's p99 must show it.
func TestLoadGRPCOpenLoopSeesThePause(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 3 s")
	}
	ts := startTide(t, fraudModel, server.Options{})
	proxy := pausingProxy(t, ts.grpc, time.Second, time.Second)
	body := writeFile(t, "body.json", fraudBody)
	s, stderr, err := runLoadCommand(t, "-r", "200", "-d", "3s", "--body-file", body, "grpc://"+proxy+"/models/fraud_logreg")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("open loop over gRPC: %d calls, %d ok, p50 %.1f ms, p99 %.1f ms, max %.1f ms", s.Completed, s.OK,
		s.Latency.Pct["50"], s.Latency.Pct["99"], s.Latency.Max)
	if s.Errors != 0 || s.OK != s.Completed || s.Sent < 500 || s.Sent > 620 {
		t.Fatalf("%d sent, %d ok of %d (codes %v, errors %v); want about 600, all ok", s.Sent, s.OK, s.Completed, s.GRPCCodes, s.ErrorKinds)
	}
	if p99 := s.Latency.Pct["99"]; p99 < 800 {
		t.Errorf("open loop p99 = %.1f ms; a 1 s freeze that caught a third of the calls must show near 1000 ms", p99)
	}
	if s.Latency.Max < 900 {
		t.Errorf("max = %.1f ms, want about 1000", s.Latency.Max)
	}
}
