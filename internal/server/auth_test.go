package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/oip/pb"
)

func TestLoadAPIKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys")
	os.WriteFile(good, []byte("# rotated 2026-11\nalpha\n\n  beta  \n#gamma\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing yet\n\n"), 0o600)
	cases := []struct {
		name, file, env string
		want            []string
		err             string
	}{
		{name: "none"},
		{name: "file", file: good, want: []string{"alpha", "beta"}},
		{name: "env", env: " one, two ", want: []string{"one", "two"}},
		// A blank entry would otherwise shrink the list, possibly to nothing: open.
		{name: "env of blanks", env: " , ", err: "TIDE_TEST_KEYS: entry 1 is blank"},
		{name: "env with a gap", env: "one,,two", err: "TIDE_TEST_KEYS: entry 2 is blank"},
		{name: "env trailing comma", env: "one,", err: "entry 2 is blank"},
		{name: "env of spaces", env: "   ", err: "entry 1 is blank"},
		{name: "both", file: good, env: "three", want: []string{"alpha", "beta", "three"}},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: "no such file"},
		{name: "file without keys", file: empty, err: "the file has no keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadAPIKeys(c.file, "TIDE_TEST_KEYS", c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %q %v, want %q", got, err, c.want)
			}
		})
	}
}

func TestKeySet(t *testing.T) {
	ks := newKeySet([]string{"s3cret", "other-key"})
	cases := map[string]bool{"s3cret": true, "other-key": true, "": false, "s3cre": false, "s3cret ": false, "S3CRET": false, "other-key-x": false}
	for key, want := range cases {
		if got := ks.allows(key); got != want {
			t.Errorf("allows(%q) = %v, want %v", key, got, want)
		}
	}
	var off *keySet = newKeySet(nil)
	if !off.allows("") {
		t.Error("no keys configured must allow everything")
	}
}

func TestPresentedKey(t *testing.T) {
	cases := []struct{ apiKey, auth, want string }{
		{"", "Bearer abc", "abc"},
		{"", "bearer  abc ", "abc"},
		{"", "Basic abc", ""},
		{"", "Bearer", ""},
		{"xyz", "Bearer abc", "xyz"},
		{"", "", ""},
	}
	for _, c := range cases {
		if got := presentedKey(c.apiKey, c.auth); got != c.want {
			t.Errorf("presentedKey(%q, %q) = %q, want %q", c.apiKey, c.auth, got, c.want)
		}
	}
}

func TestRESTAuth(t *testing.T) {
	s := newTestServer(t, Options{APIKeys: []string{"k1", "k2"}}, map[string]formatstest.Spec{"fraud": fraud})
	infer := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"predict without key", "POST", "/predict", `{"feature1":1,"feature2":0}`, nil, 401},
		{"predict with bearer", "POST", "/predict", `{"feature1":1,"feature2":0}`, map[string]string{"Authorization": "Bearer k1"}, 200},
		{"predict with X-API-Key", "POST", "/predict", `{"feature1":1,"feature2":0}`, map[string]string{"X-API-Key": "k2"}, 200},
		{"wrong key", "POST", "/predict", `{"feature1":1,"feature2":0}`, map[string]string{"Authorization": "Bearer k3"}, 401},
		{"OIP infer without key", "POST", "/v2/models/fraud/infer", infer, nil, 401},
		{"OIP infer with key", "POST", "/v2/models/fraud/infer", infer, map[string]string{"authorization": "bearer k2"}, 200},
		{"model metadata without key", "GET", "/v2/models/fraud", "", nil, 401},
		{"unknown model without key: no hint that it is missing", "GET", "/v2/models/secret-model", "", nil, 401},
		{"KServe v1 list without key", "GET", "/v1/models", "", nil, 401},
		{"KServe v1 predict with key", "POST", "/v1/models/fraud:predict", `{"instances":[[1,0]]}`, map[string]string{"X-API-Key": "k1"}, 200},
		{"liveness stays open", "GET", "/v2/health/live", "", nil, 200},
		{"readiness stays open", "GET", "/v2/health/ready", "", nil, 200},
		{"server metadata stays open", "GET", "/v2", "", nil, 200},
		{"metrics stay open", "GET", "/metrics", "", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			if c.want == http.StatusUnauthorized {
				if rec.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rec.Body.String(), "needs an API key") {
					t.Fatalf("401 without a challenge or a clear message: %v %s", rec.Header(), rec.Body)
				}
			}
		})
	}
}

func TestGRPCAuth(t *testing.T) {
	s := newTestServer(t, Options{APIKeys: []string{"k1"}}, map[string]formatstest.Spec{"fraud": fraud})
	conn := dialGRPC(t, s)
	c := pb.NewGRPCInferenceServiceClient(conn)
	bg := context.Background()
	withKey := func(k, v string) context.Context { return metadata.AppendToOutgoingContext(bg, k, v) }
	req := inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0))

	_, err := c.ModelInfer(bg, req)
	wantCode(t, err, codes.Unauthenticated, "needs an API key")
	_, err = c.ModelInfer(withKey("authorization", "Bearer wrong"), req)
	wantCode(t, err, codes.Unauthenticated, "needs an API key")
	if _, err := c.ModelInfer(withKey("authorization", "Bearer k1"), req); err != nil {
		t.Fatalf("bearer key: %v", err)
	}
	if _, err := c.ModelInfer(withKey("x-api-key", "k1"), req); err != nil {
		t.Fatalf("x-api-key: %v", err)
	}
	_, err = c.ModelMetadata(bg, &pb.ModelMetadataRequest{Name: "fraud"})
	wantCode(t, err, codes.Unauthenticated, "")
	// Without management keys, the repository RPCs take the inference keys.
	_, err = c.RepositoryIndex(bg, &pb.RepositoryIndexRequest{})
	wantCode(t, err, codes.Unauthenticated, "management API key")
	if _, err := c.RepositoryIndex(withKey("x-api-key", "k1"), &pb.RepositoryIndexRequest{}); err != nil {
		t.Fatalf("RepositoryIndex with the inference key: %v", err)
	}

	// Probes and server metadata need no key.
	if _, err := c.ServerLive(bg, &pb.ServerLiveRequest{}); err != nil {
		t.Fatalf("ServerLive: %v", err)
	}
	if _, err := c.ServerReady(bg, &pb.ServerReadyRequest{}); err != nil {
		t.Fatalf("ServerReady: %v", err)
	}
	if _, err := c.ServerMetadata(bg, &pb.ServerMetadataRequest{}); err != nil {
		t.Fatalf("ServerMetadata: %v", err)
	}
	if r, err := healthpb.NewHealthClient(conn).Check(bg, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", r, err)
	}
}

// TestGRPCManagementAuth: management keys guard the repository RPCs, inference keys
// the model RPCs, and neither opens the other's door.
func TestGRPCManagementAuth(t *testing.T) {
	cases := []struct {
		name                  string
		apiKeys, mgmtKeys     []string
		key                   string
		inferOK, repositoryOK bool
	}{
		{"both set, inference key", []string{"k1"}, []string{"m1"}, "k1", true, false},
		{"both set, management key", []string{"k1"}, []string{"m1"}, "m1", false, true},
		{"management keys only, no key", nil, []string{"m1"}, "", true, false},
		{"management keys only, management key", nil, []string{"m1"}, "m1", true, true},
		{"no keys at all", nil, nil, "", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, Options{APIKeys: c.apiKeys, ManagementKeys: c.mgmtKeys}, map[string]formatstest.Spec{"fraud": fraud})
			cl := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
			ctx := context.Background()
			if c.key != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.key)
			}
			_, err := cl.ModelInfer(ctx, inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0)))
			if (err == nil) != c.inferOK {
				t.Errorf("ModelInfer: %v, want allowed %v", err, c.inferOK)
			}
			_, err = cl.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
			if (err == nil) != c.repositoryOK {
				t.Errorf("RepositoryIndex: %v, want allowed %v", err, c.repositoryOK)
			}
		})
	}
}
