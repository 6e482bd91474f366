// Command demo is the workload image of the cluster's own e2e tests. The image has no
// shell, so the same binary is also the in-cluster client:
//
//	demo                      HTTP server on $PORT (default 8080):
//	                            GET /         "hello from <hostname>", burning ?ms=N (default
//	                                          $BURN_MS) milliseconds of CPU first
//	                            GET /healthz  200 ok, for probes
//	                            GET /metrics  Prometheus text: http_requests_total
//	demo get URL...           GET each URL, print status and body; exit 1 on any failure
//	demo load -c N -d DUR URL closed-loop load from N workers for DUR (bounded in time),
//	                          then print the request and error counts
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "get":
			os.Exit(get(os.Args[2:]))
		case "load":
			os.Exit(load(os.Args[2:]))
		}
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var requestsTotal atomic.Int64

func serve() error {
	host, _ := os.Hostname()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	defaultBurn, _ := strconv.Atoi(os.Getenv("BURN_MS"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		requestsTotal.Add(1)
		ms := defaultBurn
		if q := r.URL.Query().Get("ms"); q != "" {
			n, err := strconv.Atoi(q)
			if err != nil || n < 0 || n > 10000 {
				http.Error(w, "ms must be an integer in [0, 10000]", http.StatusBadRequest)
				return
			}
			ms = n
		}
		burnCPU(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP http_requests_total Requests served on /.\n# TYPE http_requests_total counter\nhttp_requests_total %d\n",
			requestsTotal.Load())
	})
	fmt.Println("listening on :" + port)
	return http.ListenAndServe(":"+port, mux)
}

// burnCPU spins for d so that a request costs real CPU time, which is what the CPU
// HorizontalPodAutoscaler reacts to.
func burnCPU(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		for i := range 1000 {
			x += i * i
		}
	}
	_ = x
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(urls []string) int {
	rc := 0
	for _, u := range urls {
		resp, err := client.Get(u)
		if err != nil {
			fmt.Printf("GET %s: %v\n", u, err)
			rc = 1
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		fmt.Printf("GET %s: %s\n%s\n", u, resp.Status, body)
		if resp.StatusCode != http.StatusOK {
			rc = 1
		}
	}
	return rc
}

func load(args []string) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	workers := fs.Int("c", 4, "concurrent workers")
	duration := fs.Duration("d", 60*time.Second, "how long to send load (bounded)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || *workers < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "usage: demo load [-c workers] [-d duration] URL")
		return 2
	}
	url := fs.Arg(0)
	if _, err := http.NewRequest(http.MethodGet, url, nil); err != nil {
		fmt.Fprintf(os.Stderr, "demo load: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil) // URL checked above
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("load %s: %d ok, %d failed in %s\n", url, ok.Load(), failed.Load(), *duration)
	if ok.Load() == 0 {
		return 1
	}
	return 0
}
