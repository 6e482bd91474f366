package server

import (
	"bytes"
	"fmt"
	"image/color"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tideserve/tide/internal/formats/formatstest"
)

// longTestsEnv turns on the tests that run for a minute or more.
const longTestsEnv = "TIDE_LONG_TESTS"

// overloadSecond is what one second of the long overload run saw, by the second
// each request was sent in.
type overloadSecond struct {
	sent, served, shed, other int
	latency                   []time.Duration // of the served requests
	heapInuse, rss            uint64          // peaks sampled during the second
	senderLag                 time.Duration   // how far the sender fell behind its schedule
	gcPause                   time.Duration   // GC stop-the-world time
}

// A second in which the test's own sender fell this far behind its schedule
// measured a starved process (other work on a shared machine), not the server.
const starvedLag = 100 * time.Millisecond

// TestOverloadSixtySeconds is the long form of TestOverloadStaysUpAndRecovers: it
// measures the server's capacity (closed loop, as many
// clients as can be admitted at once), then sends five times that rate, open
// loop, for 60 seconds (TIDE_OVERLOAD_SECONDS changes it). It checks that the
// server answers every request with 200 or with 429 and Retry-After, sheds most,
// keeps serving at its capacity, keeps the admitted requests' p99 bounded overall
// and in every second (but those where the test process itself was starved by
// other work: its sender's lag is recorded to tell), keeps heap and RSS bounded and not growing, serves normally at
// once when the load stops, and gets back to the goroutines it started with.
//
//	TIDE_LONG_TESTS=1 go test ./internal/server -run TestOverloadSixtySeconds -v
//
// With TIDE_OVERLOAD_OUT=DIR it also writes DIR/overload-60s.csv (one row per
// second) and DIR/overload-60s.png.
func TestOverloadSixtySeconds(t *testing.T) {
	if os.Getenv(longTestsEnv) != "1" {
		t.Skipf("runs for over a minute; set %s=1", longTestsEnv)
	}
	seconds := 60
	if v := os.Getenv("TIDE_OVERLOAD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("TIDE_OVERLOAD_SECONDS=%q: want a whole number of seconds, at least 10", v)
		}
		seconds = n
	}
	const runMS, inflight, queue = 10, 2, 8
	model := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: runMS}
	s := serverWithConfig(t, Options{}, model, fmt.Sprintf("batching:\n  max_inflight: %d\n  max_queue: %d\n", inflight, queue))
	// Requests go through the whole HTTP handler (decode, admission, model, encode)
	// without a socket: on a shared 2-core machine a TCP client at five times
	// capacity costs more CPU than the server, and starves it.
	post := func() (code int, retryAfter string, err error) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(oneRow)))
		if rec.Code != http.StatusOK && rec.Code != http.StatusTooManyRequests {
			return rec.Code, "", fmt.Errorf("%d %s", rec.Code, rec.Body)
		}
		return rec.Code, rec.Header().Get("Retry-After"), nil
	}
	baseGoroutines := runtime.NumGoroutine()

	// Capacity: twice as many closed-loop clients as the server admits at once, so
	// that its queue never runs dry, for 3 s; a shed client waits 1 ms and retries.
	capacity := func() float64 {
		var served atomic.Int64
		stop := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		for range 2 * (inflight + queue) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					if code, _, err := post(); err == nil && code == http.StatusOK {
						served.Add(1)
					} else {
						time.Sleep(time.Millisecond)
					}
				}
			}()
		}
		wg.Wait()
		return float64(served.Load()) / 3
	}()
	rate := 5 * capacity
	t.Logf("measured capacity %.0f requests/s (%d runs of %d ms at once); sending %.0f/s for %d s", capacity, inflight, runMS, rate, seconds)
	if capacity < 10 {
		t.Fatalf("capacity %.1f requests/s: the server does not serve", capacity)
	}

	secs := make([]overloadSecond, seconds)
	var mu sync.Mutex
	start := time.Now()
	second := func(at time.Time) int { return min(int(at.Sub(start)/time.Second), seconds-1) }

	// Memory, sampled every 100 ms: heap in use and the process's resident set.
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		lastPause := ms.PauseTotalNs
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case now := <-tick.C:
				runtime.ReadMemStats(&ms)
				rss := residentBytes()
				mu.Lock()
				sec := &secs[second(now)]
				sec.heapInuse, sec.rss = max(sec.heapInuse, ms.HeapInuse), max(sec.rss, rss)
				sec.gcPause += time.Duration(ms.PauseTotalNs - lastPause)
				lastPause = ms.PauseTotalNs
				mu.Unlock()
			}
		}
	}()

	interval := time.Duration(float64(time.Second) / rate)
	total := int(rate * float64(seconds))
	var wg sync.WaitGroup
	var firstErr sync.Once
	for i := 0; i < total; i++ {
		// Open loop: each request leaves at its scheduled time, whatever the server does.
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else if -d > 10*time.Millisecond {
			mu.Lock()
			sec := &secs[second(at)]
			sec.senderLag = max(sec.senderLag, -d)
			mu.Unlock()
		}
		wg.Add(1)
		go func(sec int) {
			defer wg.Done()
			t0 := time.Now()
			code, retryAfter, err := post()
			d := time.Since(t0)
			if err != nil {
				firstErr.Do(func() { t.Logf("first unexpected answer: %v", err) })
			}
			mu.Lock()
			defer mu.Unlock()
			s := &secs[sec]
			s.sent++
			switch {
			case err == nil && code == http.StatusOK:
				s.served++
				s.latency = append(s.latency, d)
			case err == nil && code == http.StatusTooManyRequests && retryAfter != "":
				s.shed++
			default:
				s.other++
			}
		}(second(at))
	}
	loadEnd := time.Now()

	// Recovery: the load has stopped (what was sent may still be in flight); the
	// first request after it, and a hundred more one after another, are served.
	var firstOK time.Duration
	var after []time.Duration
	for len(after) < 100 {
		t0 := time.Now()
		code, _, err := post()
		if err != nil {
			t.Fatalf("after the overload: %v", err)
		}
		if code != http.StatusOK {
			if len(after) > 0 || time.Since(loadEnd) > 5*time.Second {
				t.Fatalf("after the overload: %d, %s after the load stopped", code, time.Since(loadEnd).Round(time.Millisecond))
			}
			continue
		}
		if len(after) == 0 {
			firstOK = time.Since(loadEnd)
		}
		after = append(after, time.Since(t0))
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	slices.Sort(after)

	// Summaries.
	var sent, served, shed, other int
	var allLatency []time.Duration
	var worstP99, worstLag time.Duration
	starved := 0
	var peakHeap, peakRSS, earlyHeap, lateHeap uint64
	for i, s := range secs {
		sent, served, shed, other = sent+s.sent, served+s.served, shed+s.shed, other+s.other
		allLatency = append(allLatency, s.latency...)
		worstLag = max(worstLag, s.senderLag)
		if s.senderLag > starvedLag {
			starved++ // its latencies are the machine's, not the server's
		} else {
			worstP99 = max(worstP99, percentile(s.latency, 99))
		}
		peakHeap, peakRSS = max(peakHeap, s.heapInuse), max(peakRSS, s.rss)
		if i >= 5 && i < 15 {
			earlyHeap = max(earlyHeap, s.heapInuse)
		}
		if i >= seconds-10 {
			lateHeap = max(lateHeap, s.heapInuse)
		}
	}
	slices.Sort(allLatency)
	t.Logf("sent %d in %s (%.0f/s, %.1fx what was served): %d served (%.0f/s, p50 %s, p99 %s, worst one-second p99 %s), %d shed with 429 + Retry-After, %d other",
		sent, loadEnd.Sub(start).Round(time.Millisecond), float64(sent)/loadEnd.Sub(start).Seconds(), float64(sent)/float64(max(served, 1)),
		served, float64(served)/float64(seconds), percentile(allLatency, 50), percentile(allLatency, 99), worstP99, shed, other)
	t.Logf("the sender fell at most %s behind its schedule; %d of %d seconds more than %s (a starved process: not counted in the worst one-second p99)",
		worstLag.Round(time.Millisecond), starved, seconds, starvedLag)
	t.Logf("peak heap in use %.1f MiB (seconds 5-15: %.1f, last 10: %.1f), peak RSS %.1f MiB",
		mib(peakHeap), mib(earlyHeap), mib(lateHeap), mib(peakRSS))
	t.Logf("recovery: first 200 %s after the load stopped; the next 100 requests one after another: p50 %s, p99 %s",
		firstOK.Round(time.Microsecond), percentile(after, 50), percentile(after, 99))
	if dir := os.Getenv("TIDE_OVERLOAD_OUT"); dir != "" {
		if err := writeOverloadRun(dir, secs); err != nil {
			t.Error(err)
		}
	}

	if other != 0 {
		t.Errorf("%d answers were neither 200 nor 429 with Retry-After", other)
	}
	if float64(shed) < 0.6*float64(sent) {
		t.Errorf("only %d of %d shed at five times capacity", shed, sent)
	}
	if float64(served) < 0.5*capacity*float64(seconds) {
		t.Errorf("served %d in %d s, under half the measured capacity: overload cut the useful work", served, seconds)
	}
	// An admitted request waits behind at most max_queue/max_inflight = 4 runs of
	// 10 ms plus its own (~50 ms); the bounds leave room for a shared machine.
	if p99 := percentile(allLatency, 99); p99 > 500*time.Millisecond || worstP99 > time.Second {
		t.Errorf("admitted p99 %s, worst second %s: the queue bound does not bound latency", p99, worstP99)
	}
	if peakHeap > 256<<20 || peakRSS > 512<<20 {
		t.Errorf("peak heap %.0f MiB, RSS %.0f MiB under overload", mib(peakHeap), mib(peakRSS))
	}
	if starved > seconds/10 {
		t.Errorf("the test process was starved in %d of %d seconds: the machine is too busy to measure the server", starved, seconds)
	}
	if lateHeap > 2*earlyHeap+64<<20 {
		t.Errorf("heap in use grew from %.1f MiB (seconds 5-15) to %.1f MiB (last 10 s)", mib(earlyHeap), mib(lateHeap))
	}
	if firstOK > time.Second || percentile(after, 99) > 200*time.Millisecond {
		t.Errorf("slow recovery: first 200 after %s, p99 after %s", firstOK, percentile(after, 99))
	}
	// Every request goroutine ends once the load has.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseGoroutines+10 {
		t.Errorf("%d goroutines left after the overload, %d before it", n, baseGoroutines)
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if !slices.IsSorted(sorted) {
		sorted = slices.Sorted(slices.Values(sorted))
	}
	return sorted[min(len(sorted)*p/100, len(sorted)-1)]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// residentBytes is this process's resident set size (Linux), or 0.
func residentBytes() uint64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// writeOverloadRun writes the per-second figures as CSV and as a plot.
func writeOverloadRun(dir string, secs []overloadSecond) error {
	var csv bytes.Buffer
	csv.WriteString("second,sent,served,shed_429,other,served_p50_ms,served_p99_ms,heap_inuse_mib,rss_mib,sender_lag_ms,gc_pause_ms\n")
	var sent, served, shed, p99, heap, rss plotter.XYs
	for i, s := range secs {
		lat := slices.Sorted(slices.Values(s.latency))
		fmt.Fprintf(&csv, "%d,%d,%d,%d,%d,%.2f,%.2f,%.1f,%.1f,%.1f,%.2f\n", i, s.sent, s.served, s.shed, s.other,
			ms(percentile(lat, 50)), ms(percentile(lat, 99)), mib(s.heapInuse), mib(s.rss), ms(s.senderLag), ms(s.gcPause))
		x := float64(i) + 0.5
		sent = append(sent, plotter.XY{X: x, Y: float64(s.sent)})
		served = append(served, plotter.XY{X: x, Y: float64(s.served)})
		shed = append(shed, plotter.XY{X: x, Y: float64(s.shed)})
		p99 = append(p99, plotter.XY{X: x, Y: ms(percentile(lat, 99))})
		heap = append(heap, plotter.XY{X: x, Y: mib(s.heapInuse)})
		rss = append(rss, plotter.XY{X: x, Y: mib(s.rss)})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "overload-60s.csv"), csv.Bytes(), 0o644); err != nil {
		return err
	}
	panels := []struct {
		title, y string
		lines    []plotter.XYs
		names    []string
	}{
		{"Requests per second, by the second they were sent", "requests/s", []plotter.XYs{sent, served, shed}, []string{"sent", "served (200)", "shed (429)"}},
		{"Served requests: p99 latency", "ms", []plotter.XYs{p99}, []string{"p99"}},
		{"Memory of the whole test process, server and clients (peak per second)", "MiB", []plotter.XYs{heap, rss}, []string{"heap in use", "RSS"}},
	}
	colours := []color.Color{color.RGBA{0, 114, 178, 255}, color.RGBA{0, 158, 115, 255}, color.RGBA{213, 94, 0, 255}}
	grid := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = pn.title, "second", pn.y
		p.Y.Min = 0
		for j, xy := range pn.lines {
			l, err := plotter.NewLine(xy)
			if err != nil {
				return err
			}
			l.Color = colours[j%len(colours)]
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(pn.names[j], l)
		}
		p.Legend.Top = true
		grid[i] = []*plot.Plot{p}
	}
	canvas := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(9*vg.Inch, vg.Length(len(panels))*2.5*vg.Inch), vgimg.UseDPI(96))}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	areas := plot.Align(grid, tiles, draw.New(canvas))
	for i := range grid {
		grid[i][0].Draw(areas[i][0])
	}
	var png bytes.Buffer
	if _, err := canvas.WriteTo(&png); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "overload-60s.png"), png.Bytes(), 0o644)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
