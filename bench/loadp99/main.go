// Command loadp99 measures what loading a big model does to the latency of a
// model that is already serving: tide-server serves a small model under an
// open-loop request rate, alternately alone (idle) and while a big model is
// loaded through the repository API, again and again. It prints each phase's
// percentiles and the ratio of the p99s, measured in one run. bench/load-p99.sh
// builds the server and the big model and calls it.
//
//	go run ./bench/loadp99 -tide tide-server -small fraud.joblib -big forest.pkl
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	tide := flag.String("tide", "", "tide-server binary")
	small := flag.String("small", "", "the serving model's file (.joblib/.pkl)")
	big := flag.String("big", "", "the big model loaded meanwhile")
	body := flag.String("body", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`, "the small model's OIP request")
	rate := flag.Int("rate", 500, "requests per second to the serving model (open loop)")
	window := flag.Duration("window", 3*time.Second, "how long the idle window before each load lasts")
	loads := flag.Int("loads", 20, "how many times the big model is loaded")
	extra := flag.String("args", "", "more tide-server flags, space-separated")
	flag.Parse()
	if *tide == "" || *small == "" || *big == "" {
		log.Fatal("need -tide, -small and -big")
	}

	repo, err := os.MkdirTemp("", "tide-loadp99-")
	check(err)
	defer os.RemoveAll(repo)
	copyFile(*small, filepath.Join(repo, "small", "model"+filepath.Ext(*small)))

	addr := freeAddr()
	args := []string{"serve", "--http-addr", addr, "--grpc-addr", "", "--model-control", "--watch=false", "--log-level", "warn"}
	if *extra != "" {
		args = append(args, strings.Fields(*extra)...)
	}
	srv := exec.Command(*tide, append(args, repo)...)
	srv.Stderr = os.Stderr
	check(srv.Start())
	defer srv.Process.Kill()
	waitReady(addr)
	// The big model goes in after start-up, so that only the API loads it.
	copyFile(*big, filepath.Join(repo, "big", "model"+filepath.Ext(*big)))
	st, _ := os.Stat(*big)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	infer := "http://" + addr + "/v2/models/small/infer"
	fmt.Fprintf(os.Stderr, "warming up\n")
	run(client, infer, []byte(*body), *rate, 3*time.Second, nil)

	// Idle and loading phases alternate, so that whatever else the machine does
	// over the run (a noisy neighbour, the page cache, thermal state) falls on
	// both alike: each load is preceded by an idle window of its own.
	var idle, during []time.Duration
	var loadTimes []time.Duration
	for i := 0; i < *loads; i++ {
		fmt.Fprintf(os.Stderr, "idle %v, then load %d/%d of the %d MB model\n", *window, i+1, *loads, st.Size()>>20)
		idle = append(idle, run(client, infer, []byte(*body), *rate, *window, nil)...)
		ctx, stop := context.WithCancel(context.Background())
		var lat []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); lat = run(client, infer, []byte(*body), *rate, time.Hour, ctx.Done()) }()
		start := time.Now()
		post(client, "http://"+addr+"/v2/repository/models/big/load")
		loadTimes = append(loadTimes, time.Since(start))
		stop()
		wg.Wait()
		during = append(during, lat...)
		post(client, "http://"+addr+"/v2/repository/models/big/unload")
		// Not measured: the unloaded model's memory goes back meanwhile.
		run(client, infer, []byte(*body), *rate, 2*time.Second, nil)
	}

	fmt.Printf("| phase | requests | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, l []time.Duration) float64 {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Printf("| %s | %d | %.2f | %.2f | %.2f | %.2f |\n", name, len(l), ms(pct(l, 50)), ms(pct(l, 90)), ms(pct(l, 99)), ms(l[len(l)-1]))
		return ms(pct(l, 99))
	}
	p99idle := row("idle", idle)
	p99load := row(fmt.Sprintf("while the %d MB model loads", st.Size()>>20), during)
	var lt []string
	for _, d := range loadTimes {
		lt = append(lt, d.Round(10*time.Millisecond).String())
	}
	fmt.Printf("\nLoads of the %d-byte model took %s. p99 while loading / idle p99: **%.2f×** (target ≤ 2×), at %d requests/s.\n",
		st.Size(), strings.Join(lt, ", "), p99load/p99idle, *rate)
}

// run sends requests at rate per second until d passes or done closes, and
// returns each one's latency from the moment it was due: a request that waits for
// a connection, or for the server to answer the ones before it, counts its wait
// (no coordinated omission).
func run(c *http.Client, url string, body []byte, rate int, d time.Duration, done <-chan struct{}) []time.Duration {
	var mu sync.Mutex
	var out []time.Duration
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	end := start.Add(d)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.After(end) {
			break
		}
		if done != nil {
			select {
			case <-done:
				wg.Wait()
				return out
			default:
			}
		}
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				log.Fatalf("request: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				log.Fatalf("request: status %d", resp.StatusCode)
			}
			l := time.Since(due)
			mu.Lock()
			out = append(out, l)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func post(c *http.Client, url string) {
	resp, err := c.Post(url, "application/json", nil)
	check(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func copyFile(src, dst string) {
	b, err := os.ReadFile(src)
	check(err)
	check(os.MkdirAll(filepath.Dir(dst), 0o755))
	check(os.WriteFile(dst, b, 0o644))
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatal("tide-server not ready in 30 s")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
