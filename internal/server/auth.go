package server

// Optional API-key (bearer token) authentication. When Options.APIKeys is set, every
// inference and model metadata request — REST /predict, /v2/models/…, /v1/models/…
// and the gRPC model RPCs — must carry one of the keys as "Authorization: Bearer
// KEY" or "X-API-Key: KEY" (gRPC metadata "authorization" / "x-api-key"); so must
// GET /openapi.json, which describes the models (the /docs page asks for a key
// when it meets a 401, and the page's static files stay open). The
// repository (management) endpoints take Options.ManagementKeys instead. Health,
// readiness, server metadata, /metrics, gRPC health and reflection stay open:
// probes and scrapers carry no secrets.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// APIKeysEnv and ManagementKeysEnv are the environment variables the keys may
// also come from: comma-separated, e.g. from a Kubernetes Secret.
const (
	APIKeysEnv        = "TIDE_API_KEYS"
	ManagementKeysEnv = "TIDE_MANAGEMENT_KEYS"
)

// LoadAPIKeys reads keys from file (one per line; blank lines and lines starting
// with # are skipped) and from the comma-separated value of the environment
// variable envName (env). Either may be empty; an env that is set but holds an
// empty or blank entry (" , ", "a,,b") is refused rather than read as fewer keys,
// since a list that comes out empty would silently turn authentication off.
func LoadAPIKeys(file, envName, env string) ([]string, error) {
	var keys []string
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read API keys: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
				keys = append(keys, k)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read API keys from %s: %w", file, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("read API keys from %s: the file has no keys", file)
		}
	}
	if env == "" {
		return keys, nil
	}
	for i, k := range strings.Split(env, ",") {
		if k = strings.TrimSpace(k); k == "" {
			return nil, fmt.Errorf("%s: entry %d is blank; list keys separated by commas, or unset it", envName, i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// keySet holds the SHA-256 digests of the accepted keys. Comparing digests of equal
// length, against every key without stopping early, keeps the time a check takes
// independent of how much of a key a caller guessed right, and of key lengths.
type keySet struct{ digests [][sha256.Size]byte }

func newKeySet(keys []string) *keySet {
	if len(keys) == 0 {
		return nil
	}
	ks := &keySet{}
	for _, k := range keys {
		ks.digests = append(ks.digests, sha256.Sum256([]byte(k)))
	}
	return ks
}

// allows reports whether presented is one of the keys; a nil set allows everything.
func (ks *keySet) allows(presented string) bool {
	if ks == nil {
		return true
	}
	if presented == "" {
		return false
	}
	d := sha256.Sum256([]byte(presented))
	ok := 0
	for i := range ks.digests {
		ok |= subtle.ConstantTimeCompare(d[:], ks.digests[i][:])
	}
	return ok == 1
}

// presentedKey takes the key from X-API-Key, or else from a Bearer authorization.
func presentedKey(apiKey, authorization string) string {
	if apiKey != "" {
		return apiKey
	}
	const bearer = "bearer "
	if len(authorization) > len(bearer) && strings.EqualFold(authorization[:len(bearer)], bearer) {
		return strings.TrimSpace(authorization[len(bearer):])
	}
	return ""
}

const authHelp = "this endpoint needs an API key (Authorization: Bearer KEY or X-API-Key: KEY)"

// inferenceKeys returns the set that guards inference, or nil when auth is off.
func (s *Server) inferenceKeys() *keySet {
	s.apiKeysOnce.Do(func() { s.apiKeys = newKeySet(s.opts.APIKeys) })
	return s.apiKeys
}

// needsInferenceKey: the REST paths that run or describe models.
func needsInferenceKey(path string) bool {
	return path == "/predict" || path == "/openapi.json" || strings.HasPrefix(path, "/v2/models/") ||
		path == "/v1/models" || strings.HasPrefix(path, "/v1/models/")
}

// authorizeHTTP answers 401 and returns false when r needs a key it lacks.
func (s *Server) authorizeHTTP(w http.ResponseWriter, r *http.Request) bool {
	ks := s.inferenceKeys()
	if ks == nil || !needsInferenceKey(r.URL.Path) {
		return true
	}
	if ks.allows(presentedKey(r.Header.Get("X-API-Key"), r.Header.Get("Authorization"))) {
		return true
	}
	discard(r)
	w.Header().Set("WWW-Authenticate", `Bearer realm="tide"`)
	s.writeError(w, http.StatusUnauthorized, authHelp)
	return false
}

// grpcAuth checks gRPC calls: model RPCs need an inference key; repository RPCs
// need a management key (Options.ManagementKeys, as the REST repository API does),
// or an inference key when no management keys are set, so that turning on API
// keys never leaves model management open. Probes, server metadata, health and
// reflection need none.
type grpcAuth struct {
	inference, management *keySet
}

func (s *Server) newGRPCAuth() *grpcAuth {
	a := &grpcAuth{inference: s.inferenceKeys(), management: newKeySet(s.opts.ManagementKeys)}
	if a.management == nil {
		a.management = a.inference
	}
	return a
}

// grpcOpenMethods need no key.
var grpcOpenMethods = map[string]bool{
	"/inference.GRPCInferenceService/ServerLive":     true,
	"/inference.GRPCInferenceService/ServerReady":    true,
	"/inference.GRPCInferenceService/ServerMetadata": true,
}

const managementAuthHelp = "this call needs a management API key (authorization: Bearer KEY or x-api-key: KEY)"

// The OIP service's method prefixes, made once: check runs on every call.
const (
	grpcInferencePrefix  = "/" + inferenceServiceName + "/"
	grpcRepositoryPrefix = grpcInferencePrefix + "Repository"
)

func (a *grpcAuth) check(ctx context.Context, fullMethod string) error {
	if grpcOpenMethods[fullMethod] || !strings.HasPrefix(fullMethod, grpcInferencePrefix) {
		return nil
	}
	keys, help := a.inference, authHelp
	if strings.HasPrefix(fullMethod, grpcRepositoryPrefix) {
		keys, help = a.management, managementAuthHelp
	}
	if keys == nil {
		return nil
	}
	first := func(k string) string {
		if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if keys.allows(presentedKey(first("x-api-key"), first("authorization"))) {
		return nil
	}
	return status.Error(codes.Unauthenticated, help)
}

func (a *grpcAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// Access says who may do what, as the startup log states it: "off", "anyone",
// "api-keys" or "management-keys".
type Access struct {
	Inference, RepositoryIndex, ModelControl string
}

// Access reports the server's access policy (see Options).
func (s *Server) Access() Access {
	a := Access{Inference: "anyone", RepositoryIndex: "off", ModelControl: "off"}
	if len(s.opts.APIKeys) > 0 {
		a.Inference = "api-keys"
	}
	if s.opts.DisableRepositoryAPI {
		return a
	}
	// The repository endpoints take management keys, else API keys (managed).
	repo := "anyone"
	switch {
	case len(s.opts.ManagementKeys) > 0:
		repo = "management-keys"
	case len(s.opts.APIKeys) > 0:
		repo = "api-keys"
	}
	a.RepositoryIndex = repo
	if s.modelControlOn() {
		a.ModelControl = repo
	}
	return a
}

// logAccess states at startup what is open and to whom; model control open to
// anyone is a warning, since anyone who reaches the port can then unload models.
func (s *Server) logAccess() {
	a := s.Access()
	attrs := []any{"inference", a.Inference, "repository_index", a.RepositoryIndex, "model_control", a.ModelControl}
	if s.opts.ManagementAddr != "" && a.ModelControl != "off" {
		attrs = append(attrs, "model_control_addr", s.opts.ManagementAddr)
	}
	if a.ModelControl == "anyone" {
		where := "this server"
		if s.opts.ManagementAddr != "" {
			where = "the management port " + s.opts.ManagementAddr
		}
		s.log.Warn("access: anyone who reaches "+where+" can load and unload models (--model-control without management keys)", attrs...)
		return
	}
	s.log.Info("access", attrs...)
}
