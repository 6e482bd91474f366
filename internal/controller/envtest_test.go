package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

// The envtest suite runs the operator against a real kube-apiserver and etcd:
// the ones the project's cluster builds (hack/cluster/cluster build puts
// kube-apiserver in $TIDE_CLUSTER_CACHE/bin; etcd is Debian's), nothing
// downloaded. There is no kube-controller-manager, so the tests play its part
// where needed: they create pods and set Deployment status, and a fake pod
// answers the repository index over real HTTP.

func clusterCache() string {
	if c := os.Getenv("TIDE_CLUSTER_CACHE"); c != "" {
		return c
	}
	return "/var/cache/tide-cluster"
}

type suite struct {
	client client.Client
	pods   *fakePods
	stop   func() // the manager, the API server and etcd, the scratch folder
}

// TestMain stops the suite's API server and etcd after the package's tests, so
// no process outlives the run (CI checks that nothing is left behind).
func TestMain(m *testing.M) {
	code := m.Run()
	if theSuite != nil {
		theSuite.stop()
	}
	os.Exit(code)
}

var (
	suiteOnce sync.Once
	theSuite  *suite
	suiteErr  error
)

// envSuite starts the API server and the operator once for the package's tests.
// Without kube-apiserver it skips, unless TIDE_REQUIRE_ENVTEST=1 (CI's e2e stage,
// after the cluster build) makes that a failure.
func envSuite(t *testing.T) *suite {
	t.Helper()
	apiserver := filepath.Join(clusterCache(), "bin", "kube-apiserver")
	etcd, etcdErr := exec.LookPath("etcd")
	keda, _ := filepath.Glob(filepath.Join(clusterCache(), "gomod/github.com/kedacore/keda/v2@*/config/crd/bases/keda.sh_scaledobjects.yaml"))
	if _, err := os.Stat(apiserver); err != nil || etcdErr != nil || len(keda) == 0 {
		msg := fmt.Sprintf("envtest needs %s (hack/cluster/cluster build), etcd on PATH and KEDA's CRDs in the cluster's module cache", apiserver)
		if os.Getenv("TIDE_REQUIRE_ENVTEST") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	suiteOnce.Do(func() { theSuite, suiteErr = startSuite(apiserver, etcd, keda[len(keda)-1]) })
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
	return theSuite
}

func startSuite(apiserver, etcd, kedaCRD string) (*suite, error) {
	assets, err := os.MkdirTemp("", "tide-envtest-")
	if err != nil {
		return nil, err
	}
	for name, target := range map[string]string{"kube-apiserver": apiserver, "etcd": etcd} {
		if err := os.Symlink(target, filepath.Join(assets, name)); err != nil {
			return nil, err
		}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"../../deploy/helm/tide-operator/crds", kedaCRD},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		os.RemoveAll(assets)
		return nil, fmt.Errorf("envtest: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := func() {
		cancel()
		_ = env.Stop()
		os.RemoveAll(assets)
	}
	pods := &fakePods{answers: map[string]string{}, servers: map[string]*httptest.Server{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	mgr, err := NewManager(cfg, Options{
		Config:      testConfig,
		MetricsAddr: "0", ProbeAddr: "0", Concurrency: 4,
		// The real HTTP indexer, pointed at a fake server per pod.
		Indexer: HTTPIndexer{Addr: pods.addr},
	}, log)
	if err != nil {
		stop()
		return nil, err
	}
	go func() { _ = mgr.Start(ctx) }()
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		stop()
		return nil, err
	}
	return &suite{client: c, pods: pods, stop: stop}, nil
}

// fakePods stands in for Tide pods: one HTTP server per pod name, answering
// POST /v2/repository/index with what the test set for that pod.
type fakePods struct {
	mu      sync.Mutex
	answers map[string]string
	servers map[string]*httptest.Server
}

func (f *fakePods) set(pod, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[pod] = answer
}

func (f *fakePods) addr(p *corev1.Pod) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	srv, ok := f.servers[p.Name]
	if !ok {
		name := p.Name
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v2/repository/index" {
				http.NotFound(w, r)
				return
			}
			f.mu.Lock()
			a, ok := f.answers[name]
			f.mu.Unlock()
			if !ok {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, a)
		}))
		f.servers[p.Name] = srv
	}
	return strings.TrimPrefix(srv.URL, "http://")
}

// eventually retries f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *suite) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := s.client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createModel(t *testing.T, s *suite, ns, name string, spec map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.tideserve.io/v1alpha1", "kind": "Model",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
	if err := s.client.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func configMapSpec() map[string]any {
	return map[string]any{"source": map[string]any{"configMap": map[string]any{"name": "fraud-model", "key": "model.pkl"}}}
}

// TestEnvCELRejections: the API server itself refuses a bad spec, with the
// schema's message, before the operator sees it.
func TestEnvCELRejections(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	sha := strings.Repeat("a", 64)
	cases := []struct {
		name string
		spec string
		want string
	}{
		{"no source", `{"source":{}}`, "set exactly one of image, pvc, configMap, url"},
		{"two sources", `{"source":{"configMap":{"name":"a"},"pvc":{"claimName":"b"}}}`, "set exactly one of image, pvc, configMap, url"},
		{"url without sha", `{"source":{"url":{"url":"https://x/m.pkl"}}}`, "sha256"},
		{"url bad sha", `{"source":{"url":{"url":"https://x/m.pkl","sha256":"XYZ"}}}`, "should match '^[0-9a-f]{64}$'"},
		{"url scheme", `{"source":{"url":{"url":"ftp://x/m.pkl","sha256":"` + sha + `"}}}`, "must be an http:// or https:// URL"},
		{"pvc escape", `{"source":{"pvc":{"claimName":"c","path":"../etc"}}}`, "may not contain '..'"},
		{"min over max", `{"source":{"configMap":{"name":"a"}},"replicas":{"min":5,"max":2}}`, "replicas.min must not exceed replicas.max"},
		{"target missing", `{"source":{"configMap":{"name":"a"}},"autoscaling":{"mode":"cpu"}}`, "autoscaling.target is required"},
		{"cpu over 100", `{"source":{"configMap":{"name":"a"}},"autoscaling":{"mode":"cpu","target":150}}`, "CPU utilisation percentage"},
		{"zero needs rps", `{"source":{"configMap":{"name":"a"}},"autoscaling":{"mode":"cpu","target":50,"scaleToZero":{"enabled":true}}}`, "scaleToZero needs autoscaling.mode rps"},
		{"idle too short", `{"source":{"configMap":{"name":"a"}},"autoscaling":{"mode":"rps","target":5,"scaleToZero":{"enabled":true,"idlePeriod":"1s"}}}`, "idlePeriod must be between 10s and 24h"},
		{"bad format", `{"source":{"configMap":{"name":"a"}},"format":"pytorch"}`, `Unsupported value: "pytorch"`},
		{"two images", `{"source":{"image":{"reference":"a"}},"image":"b"}`, "image and source.image are exclusive"},
		{"queue delay", `{"source":{"configMap":{"name":"a"}},"batching":{"maxBatchSize":8,"maxQueueDelay":"5s"}}`, "maxQueueDelay must be between 0s and 1s"},
		{"empty client", `{"source":{"configMap":{"name":"a"}},"networkPolicy":{"enabled":true,"allowedClients":[{}]}}`, "each entry needs a podSelector or a namespaceSelector"},
		{"unknown mode", `{"source":{"configMap":{"name":"a"}},"autoscaling":{"mode":"gpu","target":1}}`, `Unsupported value: "gpu"`},
		{"canary two sources", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"},"pvc":{"claimName":"c"}}}}`, "set exactly one of image, pvc, configMap, url"},
		{"canary step over 100", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"steps":[50,150]}}`, "should be less than or equal to 100"},
		{"canary interval", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"stepInterval":"1s"}}`, "stepInterval must be between 5s and 24h"},
		{"canary ratio", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"analysis":{"maxErrorRatio":"5%"}}}`, "analysis.maxErrorRatio"},
		{"canary agreement over 1", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"analysis":{"minAgreement":"1.5"}}}`, "analysis.minAgreement"},
		{"canary action", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"action":"rollback"}}`, `Unsupported value: "rollback"`},
		{"canary sticky header", `{"source":{"configMap":{"name":"a"}},"canary":{"source":{"configMap":{"name":"b"}},"stickyHeader":"X Customer"}}`, "canary.stickyHeader"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var spec map[string]any
			if err := json.Unmarshal([]byte(c.spec), &spec); err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.tideserve.io/v1alpha1", "kind": "Model",
				"metadata": map[string]any{"name": fmt.Sprintf("bad-%d", i), "namespace": ns}, "spec": spec}}
			err := s.client.Create(context.Background(), u)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("create: %v\nwant Invalid with %q", err, c.want)
			}
		})
	}
	long := &tidev1.Model{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("m", 53), Namespace: ns},
		Spec: tidev1.ModelSpec{Source: tidev1.ModelSource{ConfigMap: &tidev1.ConfigMapSource{Name: "a"}}}}
	if err := s.client.Create(context.Background(), long); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "at most 52 characters") {
		t.Fatalf("long name: %v", err)
	}
}

// TestEnvDefaults: the schema fills in what a short Model leaves out.
func TestEnvDefaults(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	createModel(t, s, ns, "short", map[string]any{"source": map[string]any{"url": map[string]any{"url": "https://x/m", "sha256": strings.Repeat("b", 64)}}})
	var m tidev1.Model
	if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "short"}, &m); err != nil {
		t.Fatal(err)
	}
	sp := m.Spec
	if sp.Format != "auto" || sp.ImagePullPolicy != corev1.PullIfNotPresent || sp.Replicas != (tidev1.Replicas{Min: 1, Max: 3}) ||
		sp.Autoscaling.Mode != tidev1.AutoscaleNone || !sp.PodDisruptionBudget.Enabled || sp.PodDisruptionBudget.MaxUnavailable.IntValue() != 1 ||
		sp.Source.URL.FileName != "model.pkl" || sp.NetworkPolicy.Enabled {
		t.Fatalf("defaults: %+v", sp)
	}
	spec := configMapSpec()
	spec["canary"] = map[string]any{"source": map[string]any{"configMap": map[string]any{"name": "v2"}}}
	createModel(t, s, ns, "canary", spec)
	if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "canary"}, &m); err != nil {
		t.Fatal(err)
	}
	if c := m.Spec.Canary; fmt.Sprint(c.Steps) != "[5 25 50 100]" || c.StepInterval.Duration != time.Minute || c.Replicas != 1 || c.Analysis.MinRequests != 20 {
		t.Fatalf("canary defaults: %+v", c)
	}
}

// TestEnvCanaryObjects: a canary brings the candidate's Deployment and Service,
// the router with its control-token Secret (created once, owned by the Model),
// and status.url moves to the router; with no router reachable and the
// candidate not ready, the rollout waits at weight 0. Without the canary the
// candidate goes.
func TestEnvCanaryObjects(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	spec := configMapSpec()
	spec["canary"] = map[string]any{"source": map[string]any{"configMap": map[string]any{"name": "fraud-v2", "key": "model.pkl"}}, "steps": []any{int64(10), int64(100)}}
	createModel(t, s, ns, "c", spec)
	var m tidev1.Model
	eventually(t, 20*time.Second, "candidate objects and status", func() error {
		if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "c"}, &m); err != nil {
			return err
		}
		for _, o := range []client.Object{named(&appsv1.Deployment{}, "c-canary"), named(&corev1.Service{}, "c-canary"), named(&appsv1.Deployment{}, "c-activator"), named(&corev1.Secret{}, "c-router")} {
			if err := owned(t, s, &m, o); err != nil {
				return err
			}
		}
		if st := m.Status.Canary; st == nil || st.Phase != "Progressing" || st.Weight != 0 || st.Reason != "waiting for the candidate to load" {
			return fmt.Errorf("status.canary %+v", st)
		}
		if m.Status.URL != "http://c-activator."+ns+".svc:8080" {
			return fmt.Errorf("url %s", m.Status.URL)
		}
		return nil
	})
	var secret corev1.Secret
	if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "c-router"}, &secret); err != nil || len(secret.Data["token"]) != 64 {
		t.Fatalf("router token: %v %d bytes", err, len(secret.Data["token"]))
	}
	var cand appsv1.Deployment
	if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "c-canary"}, &cand); err != nil ||
		cand.Spec.Template.Spec.Volumes[1].ConfigMap.Name != "fraud-v2" {
		t.Fatalf("candidate: %v", err)
	}
	updateModel(t, s, ns, "c", func(m *tidev1.Model) { m.Spec.Canary = nil })
	eventually(t, 20*time.Second, "candidate and router gone", func() error {
		for _, o := range []client.Object{named(&appsv1.Deployment{}, "c-canary"), named(&corev1.Service{}, "c-canary"), named(&appsv1.Deployment{}, "c-activator")} {
			if err := absent(s, ns, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func owned(t *testing.T, s *suite, m *tidev1.Model, obj client.Object) error {
	t.Helper()
	if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: m.Namespace, Name: obj.GetName()}, obj); err != nil {
		return err
	}
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != m.UID || ref.Kind != "Model" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		return fmt.Errorf("%s %s: controller reference %+v", kindOf(obj), obj.GetName(), ref)
	}
	return nil
}

func absent(s *suite, ns string, obj client.Object) error {
	err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: obj.GetName()}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("%s %s still exists (%v)", kindOf(obj), obj.GetName(), err)
}

func scaledObject(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(scaledObjectGVK)
	u.SetName(name)
	return u
}

func updateModel(t *testing.T, s *suite, ns, name string, edit func(*tidev1.Model)) {
	t.Helper()
	eventually(t, 5*time.Second, "update "+name, func() error {
		var m tidev1.Model
		if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
			return err
		}
		edit(&m)
		return s.client.Update(context.Background(), &m)
	})
}

// TestEnvObjectsFollowTheSpec: create, the autoscaling mode changes (HPA on CPU,
// then KEDA with the activator, then none), the NetworkPolicy on and off, a
// person's `kubectl scale` left alone while an autoscaler owns the count, deletion.
func TestEnvObjectsFollowTheSpec(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	ctx := context.Background()
	createModel(t, s, ns, "fraud", configMapSpec())
	var m tidev1.Model
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "objects created", func() error {
		for _, o := range []client.Object{named(&appsv1.Deployment{}, "fraud"), named(&corev1.Service{}, "fraud"), named(&corev1.ServiceAccount{}, "fraud"), named(&policyv1.PodDisruptionBudget{}, "fraud")} {
			if err := owned(t, s, &m, o); err != nil {
				return err
			}
		}
		for _, o := range []client.Object{named(&autoscalingv2.HorizontalPodAutoscaler{}, "fraud"), named(&networkingv1.NetworkPolicy{}, "fraud"), scaledObject("fraud"), named(&appsv1.Deployment{}, "fraud-activator")} {
			if err := absent(s, ns, o); err != nil {
				return err
			}
		}
		return nil
	})
	var d appsv1.Deployment
	_ = s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &d)
	if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].Args[len(d.Spec.Template.Spec.Containers[0].Args)-1] != "/models/model.pkl" {
		t.Fatalf("deployment %+v", d.Spec)
	}

	// To CPU autoscaling with a NetworkPolicy.
	updateModel(t, s, ns, "fraud", func(m *tidev1.Model) {
		m.Spec.Autoscaling = tidev1.Autoscaling{Mode: tidev1.AutoscaleCPU, Target: ptr.To[int32](60)}
		m.Spec.NetworkPolicy.Enabled = true
	})
	eventually(t, 10*time.Second, "HPA and NetworkPolicy", func() error {
		hpa := named(&autoscalingv2.HorizontalPodAutoscaler{}, "fraud")
		if err := owned(t, s, &m, hpa); err != nil {
			return err
		}
		if r := hpa.Spec.Metrics[0].Resource; r == nil || *r.Target.AverageUtilization != 60 {
			return fmt.Errorf("hpa metrics %+v", hpa.Spec.Metrics)
		}
		return owned(t, s, &m, named(&networkingv1.NetworkPolicy{}, "fraud"))
	})

	// A person (or the HPA) scales the Deployment: the operator leaves the count alone.
	eventually(t, 5*time.Second, "scale", func() error {
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &d); err != nil {
			return err
		}
		d.Spec.Replicas = ptr.To[int32](3)
		return s.client.Update(ctx, &d)
	})
	updateModel(t, s, ns, "fraud", func(m *tidev1.Model) { m.Spec.Env = []corev1.EnvVar{{Name: "X", Value: "1"}} })
	eventually(t, 10*time.Second, "env rolled into the template", func() error {
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &d); err != nil {
			return err
		}
		if env := d.Spec.Template.Spec.Containers[0].Env; len(env) != 1 {
			return fmt.Errorf("env %v", env)
		}
		return nil
	})
	if *d.Spec.Replicas != 3 {
		t.Fatalf("the operator reset a scaled count to %d while an autoscaler owns it", *d.Spec.Replicas)
	}

	// To requests/s with scale to zero: the HPA goes, KEDA's ScaledObject and the activator come.
	updateModel(t, s, ns, "fraud", func(m *tidev1.Model) {
		m.Spec.Autoscaling = tidev1.Autoscaling{Mode: tidev1.AutoscaleRPS, Target: ptr.To[int32](20), ScaleToZero: &tidev1.ScaleToZero{Enabled: true, IdlePeriod: metav1.Duration{Duration: time.Minute}}}
	})
	eventually(t, 10*time.Second, "HPA replaced by a ScaledObject", func() error {
		if err := absent(s, ns, named(&autoscalingv2.HorizontalPodAutoscaler{}, "fraud")); err != nil {
			return err
		}
		so := scaledObject("fraud")
		if err := owned(t, s, &m, so); err != nil {
			return err
		}
		if cd, _, _ := unstructured.NestedInt64(so.Object, "spec", "cooldownPeriod"); cd != 60 {
			return fmt.Errorf("cooldown %d", cd)
		}
		if err := owned(t, s, &m, named(&appsv1.Deployment{}, "fraud-activator")); err != nil {
			return err
		}
		return owned(t, s, &m, named(&corev1.Service{}, "fraud-activator"))
	})
	eventually(t, 10*time.Second, "status URL through the activator", func() error {
		var got tidev1.Model
		_ = s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &got)
		if want := "http://fraud-activator." + ns + ".svc:8080"; got.Status.URL != want {
			return fmt.Errorf("url %q, want %q", got.Status.URL, want)
		}
		return nil
	})

	// Back to a fixed count, no policy: the KEDA objects and the policy go.
	updateModel(t, s, ns, "fraud", func(m *tidev1.Model) {
		m.Spec.Autoscaling = tidev1.Autoscaling{Mode: tidev1.AutoscaleNone}
		m.Spec.NetworkPolicy.Enabled = false
		m.Spec.Replicas.Min = 2
	})
	eventually(t, 10*time.Second, "back to none", func() error {
		for _, o := range []client.Object{scaledObject("fraud"), named(&appsv1.Deployment{}, "fraud-activator"), named(&corev1.Service{}, "fraud-activator"), named(&networkingv1.NetworkPolicy{}, "fraud")} {
			if err := absent(s, ns, o); err != nil {
				return err
			}
		}
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &d); err != nil || *d.Spec.Replicas != 2 {
			return fmt.Errorf("replicas %v (%v)", d.Spec.Replicas, err)
		}
		return nil
	})

	// Deletion: no finalizer holds the Model; the garbage collector (not part
	// of envtest; the e2e test shows it) follows the controller references above.
	if err := s.client.Delete(ctx, &m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "Model deleted", func() error { return absent(s, ns, &tidev1.Model{ObjectMeta: metav1.ObjectMeta{Name: "fraud"}}) })
}

// TestEnvStatusFromPods: a pod of the current spec that refuses its model makes
// the Model Ready=False with Tide's reason and a Warning Event; once a pod
// serves, Ready=True with the version.
func TestEnvStatusFromPods(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	ctx := context.Background()
	createModel(t, s, ns, "fraud", configMapSpec())
	var d appsv1.Deployment
	eventually(t, 10*time.Second, "deployment", func() error { return s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &d) })

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-abc", Namespace: ns, Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "tide", Image: "tide.local/tide:test"}}},
	}
	if err := s.client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	setPod := func(ready bool) {
		t.Helper()
		eventually(t, 5*time.Second, "pod status", func() error {
			if err := s.client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
				return err
			}
			st := corev1.ConditionFalse
			if ready {
				st = corev1.ConditionTrue
			}
			pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "tide", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
			return s.client.Status().Update(ctx, pod)
		})
	}
	setDeployment := func(ready int32) {
		t.Helper()
		eventually(t, 5*time.Second, "deployment status", func() error {
			if err := s.client.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
				return err
			}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: ready, AvailableReplicas: ready}
			return s.client.Status().Update(ctx, &d)
		})
	}
	waitCondition := func(typ, status, reason, msg string) tidev1.Model {
		t.Helper()
		var m tidev1.Model
		eventually(t, 15*time.Second, typ+"="+status, func() error {
			if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &m); err != nil {
				return err
			}
			c := meta.FindStatusCondition(m.Status.Conditions, typ)
			if c == nil || string(c.Status) != status || c.Reason != reason || !strings.Contains(c.Message, msg) || m.Status.ObservedGeneration != m.Generation {
				return fmt.Errorf("%s is %+v", typ, c)
			}
			return nil
		})
		return m
	}

	refusal := `[{"name":"fraud","version":"1","state":"FAILED","reason":"refusing to load \"posix.system\": the pickle calls a function outside the allow-list"}]`
	s.pods.set(pod.Name, refusal)
	setPod(false)
	setDeployment(0)
	waitCondition(tidev1.ConditionReady, "False", ReasonLoadFailed, `refusing to load "posix.system"`)
	waitCondition(tidev1.ConditionModelLoaded, "False", ReasonLoadFailed, `refusing to load "posix.system"`)
	eventually(t, 10*time.Second, "Warning event", func() error {
		var events corev1.EventList
		if err := s.client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == ReasonLoadFailed && strings.Contains(e.Message, "posix.system") && e.InvolvedObject.Name == "fraud" {
				return nil
			}
		}
		return fmt.Errorf("%d events, none a LoadFailed warning", len(events.Items))
	})

	s.pods.set(pod.Name, `[{"name":"fraud","version":"1","state":"READY","reason":""}]`)
	setPod(true)
	setDeployment(1)
	m := waitCondition(tidev1.ConditionReady, "True", ReasonServing, "fraud/1")
	if m.Status.ModelVersion != "fraud/1" || m.Status.ReadyReplicas != 1 || m.Status.URL != "http://fraud."+ns+".svc:8080" {
		t.Fatalf("status %+v", m.Status)
	}
	waitCondition(tidev1.ConditionScaled, "True", ReasonAtDesired, "1 of 1")
	waitCondition(tidev1.ConditionDegraded, "False", ReasonAsExpected, "")
}

// TestEnvExamplesAreValid: every Model in examples/operator is admitted by the
// API server as written (a server-side dry run: nothing is created).
func TestEnvExamplesAreValid(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	files, _ := filepath.Glob("../../examples/operator/*.yaml")
	if len(files) < 3 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if u.GetKind() != "Model" {
				continue
			}
			u.SetNamespace(ns)
			if err := s.client.Create(context.Background(), u, client.DryRunAll); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
		}
	}
}

// reconcilePanics reads controller-runtime's own count of recovered reconcile panics.
func reconcilePanics(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == "controller_runtime_reconcile_panics_total" {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestEnvAdmittedSpecsReconcileWithoutPanic: specs at the edges of what the API
// server admits (every optional field, bounds, empty lists, the smallest and the
// largest values, each source and mode) are each reconciled to a status for their
// generation, and the reconciler never panics on them (controller-runtime would
// recover and count it; a recovered panic is still a bug).
func TestEnvAdmittedSpecsReconcileWithoutPanic(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	before := reconcilePanics(t)
	sha := strings.Repeat("f", 64)
	specs := map[string]string{
		"minimal-image":  `{"source":{"image":{"reference":"r"}}}`,
		"url-everything": `{"source":{"url":{"url":"http://h/m.onnx","sha256":"` + sha + `","fileName":"m.onnx"}},"format":"onnx","image":"img","imagePullPolicy":"Always","replicas":{"min":1000,"max":1000},"autoscaling":{"mode":"inflight","target":1000000},"batching":{"maxBatchSize":65536,"maxQueueDelay":"0s"},"admission":{"maxInflight":100000,"maxQueue":0},"apiKeySecret":{"name":"absent"},"env":[{"name":"A","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}`,
		"pvc-root":       `{"source":{"pvc":{"claimName":"c","path":""}},"podDisruptionBudget":{"enabled":true,"maxUnavailable":"100%"},"networkPolicy":{"enabled":true,"allowedClients":[{"podSelector":{}},{"namespaceSelector":{"matchExpressions":[{"key":"a","operator":"Exists"}]}}]}}`,
		"cm-repository":  `{"source":{"configMap":{"name":"cm"}},"podDisruptionBudget":{"enabled":false},"placement":{"nodeSelector":{"a":"b"},"tolerations":[{"operator":"Exists"}],"affinity":{},"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"k","whenUnsatisfiable":"DoNotSchedule"}]}}`,
		"zero-min-idle":  `{"source":{"configMap":{"name":"cm","key":"m.pkl"}},"autoscaling":{"mode":"rps","target":1,"scaleToZero":{"enabled":true,"idlePeriod":"10s","prometheusAddress":"http://p:9090"}}}`,
		"zero-off":       `{"source":{"configMap":{"name":"cm"}},"autoscaling":{"mode":"cpu","target":100,"scaleToZero":{"enabled":false}}}`,
		"empty-lists":    `{"source":{"configMap":{"name":"cm"}},"env":[],"placement":{"tolerations":[],"topologySpreadConstraints":[]},"networkPolicy":{"enabled":true,"allowedClients":[]},"resources":{}}`,
	}
	for name, spec := range specs {
		var v map[string]any
		if err := json.Unmarshal([]byte(spec), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		createModel(t, s, ns, name, v)
	}
	for name := range specs {
		eventually(t, 15*time.Second, name+" reconciled", func() error {
			var m tidev1.Model
			if err := s.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
				return err
			}
			if m.Status.ObservedGeneration != m.Generation || meta.FindStatusCondition(m.Status.Conditions, tidev1.ConditionReady) == nil {
				return fmt.Errorf("status %+v", m.Status)
			}
			return nil
		})
	}
	if n := reconcilePanics(t) - before; n != 0 {
		t.Fatalf("%v reconcile panics on admitted specs", n)
	}
}

// TestEnvNeverTakesOverAnotherObject: a Service of the Model's name that the
// Model does not control is left as it is, and the Model says why it cannot serve.
func TestEnvNeverTakesOverAnotherObject(t *testing.T) {
	s := envSuite(t)
	ns := s.namespace(t)
	ctx := context.Background()
	theirs := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns, Labels: map[string]string{"team": "other"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "other"}, Ports: []corev1.ServicePort{{Name: "web", Port: 80}}}}
	if err := s.client.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	createModel(t, s, ns, "taken", configMapSpec())
	eventually(t, 15*time.Second, "ReconcileFailed in the status", func() error {
		var m tidev1.Model
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "taken"}, &m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, tidev1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonReconcileFailed || !strings.Contains(c.Message, "Service taken: exists and is not controlled by this Model") {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	var svc corev1.Service
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(theirs), &svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.OwnerReferences) != 0 || svc.Spec.Selector["app"] != "other" || svc.Spec.Ports[0].Name != "web" || svc.Labels[labelManagedBy] != "" {
		t.Fatalf("the other Service was changed: %+v %+v", svc.ObjectMeta, svc.Spec)
	}
}
