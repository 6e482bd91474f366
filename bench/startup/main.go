// Command startup measures what a pod feels of tide-server: how long from exec to
// the first answered /predict, how much memory it holds idle, and how much after
// loading a large forest, each beside the bare Go floor server in the same run.
// bench/startup.sh builds the binaries and runs it; see docs/performance.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	tide := flag.String("tide", "", "tide-server binary")
	floor := flag.String("floor", "", "the Go floor server binary (shared/baselines/floor.go)")
	model := flag.String("model", "examples/fraud/model.pkl", "model for the start-up and idle runs")
	forest := flag.String("forest", "", "large forest pickle for the memory run (bench/gen_big_forest.py); empty skips it")
	runs := flag.Int("runs", 20, "start-ups per server")
	flag.Parse()
	if *tide == "" || *floor == "" {
		fmt.Fprintln(os.Stderr, "startup: -tide and -floor are required")
		os.Exit(2)
	}
	servers := []server{
		{name: "tide-server", args: func(addr string) []string {
			return []string{*tide, "serve", "--http-addr", addr, "--grpc-addr", "127.0.0.1:0", "--log-level", "warn", "--watch=false", *model}
		}},
		{name: "go floor", args: func(addr string) []string { return []string{*floor, "-addr", addr} }},
	}
	// Interleaved rounds, so that a burst of other work on the machine hits both.
	times := make([][]time.Duration, len(servers))
	idle := make([]memory, len(servers))
	for r := 0; r < *runs; r++ {
		for i, s := range servers {
			d, mem, err := startOnce(s, r == *runs-1)
			if err != nil {
				fmt.Fprintf(os.Stderr, "startup: %s: %v\n", s.name, err)
				os.Exit(1)
			}
			times[i] = append(times[i], d)
			if r == *runs-1 {
				idle[i] = mem
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, *runs)
	}
	fmt.Printf("Cold start: exec to the first answered POST /predict (%s), %d runs each, interleaved\n\n", *model, *runs)
	fmt.Println("| server | median ms | p90 ms | min ms | idle RSS MiB (anon + file) |")
	fmt.Println("|---|---:|---:|---:|---|")
	for i, s := range servers {
		sort.Slice(times[i], func(a, b int) bool { return times[i][a] < times[i][b] })
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %.1f (%.1f + %.1f) |\n", s.name, ms(pct(times[i], 50)), ms(pct(times[i], 90)), ms(times[i][0]),
			mib(idle[i].rss), mib(idle[i].anon), mib(idle[i].file))
	}
	fmt.Printf("\ntide-server ÷ floor, median start-up: %.2f×\n", float64(pct(times[0], 50))/float64(pct(times[1], 50)))
	if *forest != "" {
		if err := forestMemory(*tide, *forest, idle[0]); err != nil {
			fmt.Fprintln(os.Stderr, "startup: forest:", err)
			os.Exit(1)
		}
	}
}

type server struct {
	name string
	args func(addr string) []string
}

type memory struct{ rss, anon, file, peak int64 }

func startOnce(s server, measureIdle bool) (time.Duration, memory, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, memory{}, err
	}
	args := s.args(addr)
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, memory{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	body := []byte(`{"feature1": 0.5, "feature2": -1.2}`)
	for {
		resp, err := client.Post("http://"+addr+"/predict", "application/json", bytes.NewReader(body))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			return 0, memory{}, fmt.Errorf("no answer after 20 s: %v\n%s", err, stderr.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
	d := time.Since(start)
	var mem memory
	if measureIdle {
		time.Sleep(2 * time.Second) // past start-up's transient allocations
		mem, err = readMemory(cmd.Process.Pid)
	}
	return d, mem, err
}

// forestMemory serves the forest, reads the flattened size from the load log
// (bytes=) and the process's memory once the load's garbage is gone.
func forestMemory(tide, forest string, idle memory) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(tide, "serve", "--http-addr", addr, "--grpc-addr", "127.0.0.1:0", "--log-format", "json", "--watch=false", forest)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var flat int64
	var loadTook time.Duration
	sc := bufio.NewScanner(logs)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line["msg"] == "model loaded" {
			b, _ := line["bytes"].(float64)
			d, _ := line["duration"].(float64) // slog writes a duration as nanoseconds
			flat, loadTook = int64(b), time.Duration(d).Round(time.Millisecond)
			break
		}
		if line["msg"] == "model failed to load" {
			return fmt.Errorf("%v", line["error"])
		}
	}
	if flat == 0 {
		return fmt.Errorf("no bytes= in the load log")
	}
	go io.Copy(io.Discard, logs)
	ready := time.Since(start)
	time.Sleep(3 * time.Second)
	mem, err := readMemory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	st, _ := os.Stat(forest)
	fmt.Printf("\nLarge forest (%s, %.1f MB pickle): loaded in %s (ready %.1f s after exec)\n\n", forest, float64(st.Size())/1e6, loadTook, ready.Seconds())
	fmt.Println("| flattened trees MiB | peak RSS MiB | RSS after load MiB (anon + file) | RSS ÷ flattened | growth over idle MiB | growth ÷ flattened |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	growth := mem.rss - idle.rss
	fmt.Printf("| %.1f | %.1f | %.1f (%.1f + %.1f) | %.2f | %.1f | %.2f |\n", mib(flat), mib(mem.peak), mib(mem.rss), mib(mem.anon), mib(mem.file),
		float64(mem.rss)/float64(flat), mib(growth), float64(growth)/float64(flat))
	return nil
}

// readMemory reads VmRSS (split into anonymous and file-backed pages) and VmHWM.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "RssAnon:":
			m.anon = kb << 10
		case "RssFile:":
			m.file = kb << 10
		case "VmHWM:":
			m.peak = kb << 10
		}
	}
	return m, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }
