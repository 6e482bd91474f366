package repository

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func weightsOf(t *testing.T, v *Version) string {
	t.Helper()
	_, md, err := v.Model()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(md.Features, ",")
}

func TestRefreshLifecycle(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	write(t, filepath.Join(dir, "1", "model.tlin"), `{"weights":[1],"features":["v1"]}`)
	r, err := Open(root, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.LoadAll(context.Background())
	v1, _ := r.Get("m", "")
	if weightsOf(t, v1) != "v1" {
		t.Fatal("v1 not served")
	}

	// A request in flight on version 1 while version 2 arrives.
	inflight, err := v1.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "2", "model.tlin"), `{"weights":[1],"features":["v2"]}`)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, _ := r.Get("m", "")
	if v.Version != "2" || weightsOf(t, v) != "v2" {
		t.Fatalf("default version %s (%s), want 2", v.Version, weightsOf(t, v))
	}
	if _, err := r.Get("m", "1"); err == nil {
		t.Fatal("version 1 still served under the default latest-1 policy")
	}
	if inflight.Closed() {
		t.Fatal("version 1 closed while a request still used it")
	}
	if inflight.Meta.Features[0] != "v1" {
		t.Fatal("in-flight request lost its model")
	}
	inflight.Release()
	if !inflight.Closed() {
		t.Fatal("version 1 not closed after its last request")
	}

	// A bad new file for version 2 leaves the good load serving, with the reason.
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	write(t, filepath.Join(dir, "2", "model.tlin"), `{"fail_load":"truncated upload"}`)
	r.Refresh(context.Background())
	v, _ = r.Get("m", "")
	st, why := v.Status()
	if st != Ready || weightsOf(t, v) != "v2" || !strings.Contains(why, "reload failed, still serving the previous load: load model.tlin: truncated upload") {
		t.Fatalf("after a bad reload: %s %q", st, why)
	}
	// Fixed: the new load replaces the old.
	time.Sleep(10 * time.Millisecond)
	write(t, filepath.Join(dir, "2", "model.tlin"), `{"weights":[1],"features":["v2b"]}`)
	r.Refresh(context.Background())
	v, _ = r.Get("m", "")
	if st, why := v.Status(); st != Ready || why != "" || weightsOf(t, v) != "v2b" {
		t.Fatalf("after a good reload: %s %q %s", st, why, weightsOf(t, v))
	}

	// A new model folder appears; the old one is removed.
	write(t, filepath.Join(root, "n", "model.tlin"), good)
	r.Refresh(context.Background())
	if got := strings.Join(r.Names(), ","); got != "m,n" {
		t.Fatalf("names %s", got)
	}
}

func TestLoadUnloadAPI(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "m", "model.tlin"), good)
	r, _ := Open(root, Options{}, quiet)
	r.LoadAll(context.Background())
	if err := r.UnloadModel("m"); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get("m", ""); err != nil {
		t.Fatal(err)
	} else if _, _, err := v.Model(); err == nil || !strings.Contains(err.Error(), "unloaded through the repository API") {
		t.Fatalf("unloaded model: %v", err)
	}
	if idx := r.Index(); len(idx) != 1 || idx[0].State != Unavailable || idx[0].Reason == "" {
		t.Fatalf("index %+v", idx)
	}
	r.Refresh(context.Background()) // a refresh does not bring it back
	if v, _ := r.Get("m", ""); v != nil {
		if _, _, err := v.Model(); err == nil {
			t.Fatal("refresh reloaded a model the user unloaded")
		}
	}
	if err := r.LoadModel(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get("m", ""); err != nil || weightsOf(t, v) != "feature1,feature2" {
		t.Fatalf("after load: %v", err)
	}
	if err := r.LoadModel(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "not in the repository") {
		t.Fatalf("load of a missing model: %v", err)
	}
	if err := r.UnloadModel("nope"); err == nil {
		t.Fatal("unload of a missing model succeeded")
	}
	write(t, filepath.Join(root, "bad", "model.tlin"), `{"fail_load":"nope"}`)
	if err := r.LoadModel(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("load of a broken model: %v", err)
	}
}

func TestWatchPicksUpNewVersion(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "m", "1", "model.tlin"), `{"weights":[1],"features":["v1"]}`)
	r, _ := Open(root, Options{}, quiet)
	r.LoadAll(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 50*time.Millisecond, 0)
	time.Sleep(100 * time.Millisecond)
	write(t, filepath.Join(root, "m", "2", "model.tlin"), `{"weights":[1],"features":["v2"]}`)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := r.Get("m", ""); err == nil && v.Version == "2" {
			if st, _ := v.Status(); st == Ready {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("watch did not load version 2")
}

func TestFailedNewVersionLeavesOldServing(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "m", "1", "model.tlin"), `{"weights":[1],"features":["v1"]}`)
	r, _ := Open(root, Options{}, quiet)
	r.LoadAll(context.Background())
	write(t, filepath.Join(root, "m", "2", "model.tlin"), `{"fail_load":"bad export"}`)
	r.Refresh(context.Background())
	v, err := r.Get("m", "")
	if err != nil || v.Version != "1" || weightsOf(t, v) != "v1" {
		t.Fatalf("default after a failed new version: %v %v", v, err)
	}
	v2, _ := r.Get("m", "2")
	if st, why := v2.Status(); st != Failed || !strings.Contains(why, "bad export") {
		t.Fatalf("version 2: %s %q", st, why)
	}
	// Fixing version 2 completes the switch and retires version 1.
	time.Sleep(10 * time.Millisecond)
	write(t, filepath.Join(root, "m", "2", "model.tlin"), `{"weights":[1],"features":["v2"]}`)
	r.Refresh(context.Background())
	if v, _ := r.Get("m", ""); v.Version != "2" {
		t.Fatalf("default %s, want 2", v.Version)
	}
	if _, err := r.Get("m", "1"); err == nil {
		t.Fatal("version 1 not retired after version 2 became ready")
	}
}

// TestFailedNewVersionIsTold: a new version folder that fails to load leaves the
// previous version serving; the log says so truthfully, and the model's version
// list leaves the failed one out (the index shows it, with why).
func TestFailedNewVersionIsTold(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	write(t, filepath.Join(dir, "1", "model.tlin"), `{"weights":[1],"features":["v1"]}`)
	var logs bytes.Buffer
	r, err := Open(root, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.LoadAll(t.Context())
	write(t, filepath.Join(dir, "2", "model.tlin"), `{"fail_load":"truncated upload"}`)
	r.Refresh(t.Context())
	if v, err := r.Get("m", ""); err != nil || v.Version != "1" {
		t.Fatalf("serving %v %v, want version 1", v, err)
	}
	if !strings.Contains(logs.String(), "still_serving_previous=true") {
		t.Errorf("log does not say the model still serves:\n%s", logs.String())
	}
	e, _ := r.Entry("m")
	if got := e.VersionNames(); len(got) != 1 || got[0] != "1" {
		t.Errorf("versions %v, want [1] (the failed 2 left out)", got)
	}
	var failed bool
	for _, ie := range r.Index() {
		failed = failed || (ie.Version == "2" && ie.State == Failed && strings.Contains(ie.Reason, "truncated upload"))
	}
	if !failed {
		t.Errorf("index %+v lacks version 2 as FAILED with its reason", r.Index())
	}
}
