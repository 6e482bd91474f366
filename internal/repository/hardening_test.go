package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/model"
)

func TestLoadOverItsMemoryBudgetFailsWithTheReason(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "small", "model.tlin"), good)
	write(t, filepath.Join(root, "big", "model.tlin"), `{"weights":[1,-1],"pad":"`+strings.Repeat("x", 4000)+`"}`)
	r, err := Open(root, Options{LoadMemoryBudget: 1000}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.LoadAll(context.Background())
	if st, why := mustGet(t, r, "small").Status(); st != Ready {
		t.Fatalf("small model: %s %s", st, why)
	}
	st, why := mustGet(t, r, "big").Status()
	if st != Failed || !strings.Contains(why, "memory budget") || !strings.Contains(why, "--load-memory-budget") {
		t.Fatalf("big model: %s %q, want FAILED naming the budget and its flag", st, why)
	}
	err = r.LoadModel(context.Background(), "big")
	if !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("LoadModel: %v, want ErrLoadFailed (a 422, not a 500)", err)
	}
}

func mustGet(t *testing.T, r *Repository, name string) *Version {
	t.Helper()
	v, err := r.Get(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestErrorsAndTheIndexShowPathsRelativeToTheRoot(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "broken", "3", "model.tlin"), `{"fail_load":"bad bytes at /opt/ort/onnxruntime_src/core/graph.cc:120"}`)
	write(t, filepath.Join(root, "empty", "README"), "no model here")
	r, err := Open(root, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.LoadAll(context.Background())
	var texts []string
	for _, e := range r.Index() {
		texts = append(texts, e.Reason)
	}
	texts = append(texts, r.Problems()...)
	if err := r.LoadModel(context.Background(), "broken"); err != nil {
		texts = append(texts, err.Error())
	}
	all := strings.Join(texts, "\n")
	if strings.Contains(all, root) || strings.Contains(all, "/opt/") {
		t.Fatalf("a server path leaked:\n%s", all)
	}
	if !strings.Contains(all, "graph.cc:120") || !strings.Contains(all, "empty: no model file") {
		t.Fatalf("the messages lost what they say:\n%s", all)
	}
}

func TestPublicMessage(t *testing.T) {
	root := t.TempDir()
	for in, want := range map[string]string{
		"load " + root + "/fraud/2/model.pkl: bad":                   "load fraud/2/model.pkl: bad",
		"open " + root + "/x/model.onnx failed:/src/ort/graph.cc:12": "open x/model.onnx failed:graph.cc:12",
		`file "/etc/passwd" is not allowed`:                          `file "passwd" is not allowed`,
		"ratio 1/2 and a/b stay":                                     "ratio 1/2 and a/b stay",
		"load model.pkl: stack underflow":                            "load model.pkl: stack underflow",
	} {
		if got := publicMessage(rootPrefixes(root), in); got != want {
			t.Errorf("publicMessage(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	// A relative root as given on the command line.
	if got := publicMessage(rootPrefixes("./models"), "load models/fraud/model.pkl: x"); got != "load fraud/model.pkl: x" {
		t.Errorf("relative root: %q", got)
	}
}

func TestSymlinksOutsideTheRootAreSkippedWithAWarning(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	write(t, filepath.Join(outside, "stolen", "model.tlin"), good)
	write(t, filepath.Join(outside, "secret.tlin"), good)
	write(t, filepath.Join(root, "inside", "model.tlin"), good)
	write(t, filepath.Join(root, "linkfile", "README"), "")
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "stolen"), "stolen")                   // model folder outside
	link(filepath.Join(root, "inside"), "alias")                       // model folder inside
	link(filepath.Join(outside, "secret.tlin"), "linkfile/model.tlin") // model file outside
	link(filepath.Join(root, "nowhere"), "dangling")                   // broken

	r, err := Open(root, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "alias,inside" {
		t.Fatalf("names %s, want alias,inside (links inside the root are followed)", got)
	}
	problems := strings.Join(r.Problems(), "\n")
	for _, want := range []string{
		"stolen: symlink to a path outside the repository, skipped",
		"linkfile/model.tlin: symlink to a path outside the repository, skipped",
		"dangling: broken symlink, skipped",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, outside) || strings.Contains(problems, root) {
		t.Errorf("problems name server paths:\n%s", problems)
	}

	r, err = Open(root, Options{FollowSymlinksOutside: true}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "alias,inside,linkfile,stolen" {
		t.Fatalf("with FollowSymlinksOutside: names %s", got)
	}
}

// probeLoader is a format for the tests below: it records how many loads run at
// once, the nice value of the thread each runs on and the pacer each gets.
type probeLoader struct {
	mu            sync.Mutex
	running, peak int
	nice          []int
	pacers        []*loadpace.Pacer
}

var probe = &probeLoader{}

func init() {
	formats.Register(formats.Runtime{Format: "probe", Extensions: []string{".probe"}, Loader: probe})
}

func (p *probeLoader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	p.mu.Lock()
	p.running++
	p.peak = max(p.peak, p.running)
	p.nice = append(p.nice, threadNice())
	p.pacers = append(p.pacers, cfg.CPU)
	p.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	p.mu.Lock()
	p.running--
	p.mu.Unlock()
	return nil, errors.New("probe only")
}

func TestLoadsRunOneAtATimeAtLowerPriority(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "b", "c", "d"} {
		write(t, filepath.Join(root, name, "model.probe"), "")
	}
	for _, tc := range []struct {
		opts Options
		peak int
	}{{Options{}, 1}, {Options{LoadConcurrency: 3}, 3}} {
		*probe = probeLoader{}
		r, err := Open(root, tc.opts, quiet)
		if err != nil {
			t.Fatal(err)
		}
		r.LoadAll(context.Background())
		if probe.peak != tc.peak {
			t.Errorf("LoadConcurrency %d: %d loads ran at once, want %d", tc.opts.LoadConcurrency, probe.peak, tc.peak)
		}
		if runtime.GOOS == "linux" {
			for _, n := range probe.nice {
				if n != loadNice {
					t.Errorf("a load ran at nice %d, want %d", n, loadNice)
				}
			}
		}
	}
	// The loads' threads ended with them: this one still runs at the usual priority.
	if runtime.GOOS == "linux" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if n := threadNice(); n == loadNice {
			t.Errorf("a serving thread runs at the loads' nice %d", n)
		}
	}
}

// Each load gets a pacer of its own at the configured CPU share (the pacer's
// slices are tested in loadpace); no share, or a whole CPU, is unpaced.
func TestLoadsArePacedAtTheConfiguredShare(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "b"} {
		write(t, filepath.Join(root, name, "model.probe"), "")
	}
	for _, share := range []float64{0, 1, 0.5} {
		*probe = probeLoader{}
		r, err := Open(root, Options{LoadCPUShare: share}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		r.LoadAll(context.Background())
		if len(probe.pacers) != 2 {
			t.Fatalf("share %v: %d loads ran, want 2", share, len(probe.pacers))
		}
		paced := share > 0 && share < 1
		for _, p := range probe.pacers {
			if (p != nil) != paced {
				t.Errorf("share %v: a load got pacer %p, want paced=%v", share, p, paced)
			}
		}
		if paced && probe.pacers[0] == probe.pacers[1] {
			t.Errorf("share %v: two loads shared one pacer", share)
		}
	}
}
