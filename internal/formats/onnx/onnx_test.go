package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
)

func TestRegistered(t *testing.T) {
	rt, ok := formats.Lookup("onnx")
	if !ok {
		t.Fatal("format onnx not registered")
	}
	if byExt, err := formats.ForFile("model.ONNX"); err != nil || byExt.Format != "onnx" {
		t.Fatalf("ForFile(model.ONNX) = %v, %v; want the onnx runtime", byExt.Format, err)
	}
	if rt.Loader == nil {
		t.Fatal("no loader")
	}
}

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("lib"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envLib, flagLib, defaultLib := touch("env.so"), touch("flag.so"), touch("default.so")
	missing := filepath.Join(dir, "missing.so")
	for _, tc := range []struct {
		name               string
		env, setter        string
		candidates         []string
		want               string
		wantErr            []string
		wantNotFoundErrors bool
	}{
		{name: "env wins", env: envLib, setter: flagLib, candidates: []string{defaultLib}, want: envLib},
		{name: "setter next", setter: flagLib, candidates: []string{defaultLib}, want: flagLib},
		{name: "first existing default", candidates: []string{missing, dir, defaultLib}, want: defaultLib},
		{name: "env names a missing file", env: missing, setter: flagLib, candidates: []string{defaultLib},
			wantErr: []string{LibraryEnv + "=" + missing, "hack/install-onnxruntime.sh"}, wantNotFoundErrors: true},
		{name: "flag names a missing file", setter: missing, candidates: []string{defaultLib},
			wantErr: []string{"--onnxruntime-lib=" + missing}, wantNotFoundErrors: true},
		{name: "nothing anywhere", candidates: []string{missing},
			wantErr: []string{"not found", "hack/install-onnxruntime.sh", LibraryEnv}, wantNotFoundErrors: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findLibrary(tc.env, tc.setter, tc.candidates)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if errors.Is(err, errLibraryNotFound) != tc.wantNotFoundErrors {
				t.Errorf("errors.Is(err, errLibraryNotFound) = %v", !tc.wantNotFoundErrors)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLibraryCandidatesStartWithTheInstallDir(t *testing.T) {
	c := LibraryCandidates()
	if len(c) == 0 || c[0] != "/usr/local/lib/tide/libonnxruntime.so" {
		t.Fatalf("candidates start %v; hack/install-onnxruntime.sh installs to /usr/local/lib/tide", c)
	}
}

func TestSetOptionsValidates(t *testing.T) {
	defer SetOptions(Options{})
	for _, tc := range []struct {
		o       Options
		wantErr string
	}{
		{o: Options{}},
		{o: Options{IntraOpThreads: 1, InterOpThreads: 4, ParallelExecution: true}},
		{o: Options{Provider: CUDA, CUDADeviceID: 1, CUDAOptions: map[string]string{"gpu_mem_limit": "1"}}},
		{o: Options{IntraOpThreads: -1}, wantErr: "thread counts"},
		{o: Options{Provider: "tpu"}, wantErr: `unknown execution provider "tpu"`},
		{o: Options{Provider: CUDA, CUDADeviceID: -2}, wantErr: "device id"},
	} {
		err := SetOptions(tc.o)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tc.o, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.wantErr)
		case tc.wantErr == "" && !reflect.DeepEqual(currentOptions(), tc.o):
			t.Errorf("options now %+v, want %+v", currentOptions(), tc.o)
		}
	}
}

func TestSetOptionsCopiesTheMap(t *testing.T) {
	defer SetOptions(Options{})
	m := map[string]string{"k": "v"}
	if err := SetOptions(Options{CUDAOptions: m}); err != nil {
		t.Fatal(err)
	}
	m["k"] = "changed"
	if got := currentOptions().CUDAOptions["k"]; got != "v" {
		t.Fatalf("options changed with the caller's map: %q", got)
	}
}
