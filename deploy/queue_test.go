package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestQueueChart: autoscaling.mode=queue makes the pods queue workers whose
// broker URL comes from a Secret, scaled by KEDA's scaler of that broker on the
// consumer's backlog, from zero.
func TestQueueChart(t *testing.T) {
	helm := helmBinary(t)
	values := filepath.Join(chartDir, "ci", "queue-values.yaml")
	tests := []struct {
		name     string
		set      []string
		trigger  string
		metadata map[string]string
		auth     bool
	}{
		{name: "nats", trigger: "nats-jetstream", metadata: map[string]string{
			"natsServerMonitoringEndpoint": "nats.nats.svc:8222", "account": "$G", "stream": "tide-requests", "consumer": "tide",
			"lagThreshold": "100", "activationLagThreshold": "0"}},
		{name: "redis", set: []string{"queue.broker=redis", "queue.redis.passwordSecret.name=redis-auth", "autoscaling.queue.targetBacklog=50"},
			trigger: "redis-streams", auth: true, metadata: map[string]string{
				"address": "redis.redis.svc:6379", "stream": "tide-requests", "consumerGroup": "tide", "lagCount": "50", "activationLagCount": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"-f", values}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			r, err := helmTemplate(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			if r.has("HorizontalPodAutoscaler", "fraud-tide") || r.has("Deployment", "fraud-tide-activator") {
				t.Error("an HPA or an activator rendered: KEDA scales the workers, and no request waits for them")
			}
			d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment sets replicas %d; KEDA owns the count", *d.Spec.Replicas)
			}
			c := d.Spec.Template.Spec.Containers[0]
			for _, want := range []string{"--queue-stream=tide-requests", "--queue-group=tide", "--queue-results=tide-results",
				"--queue-dead-letters=tide-dead-letters", "--queue-max-deliveries=5", "--queue-create-stream"} {
				if !slices.Contains(c.Args, want) {
					t.Errorf("args %v lack %s", c.Args, want)
				}
			}
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--queue-url") {
					t.Errorf("the broker URL is in the args (%s): its credentials would show in the pod spec", a)
				}
			}
			var fromSecret bool
			for _, e := range c.Env {
				if e.Name == "TIDE_QUEUE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
					e.ValueFrom.SecretKeyRef.Name == "fraud-queue" && e.ValueFrom.SecretKeyRef.Key == "url" {
					fromSecret = true
				}
			}
			if !fromSecret {
				t.Errorf("TIDE_QUEUE_URL does not come from Secret fraud-queue, key url: %+v", c.Env)
			}
			so := decode[map[string]any](t, r, "ScaledObject", "fraud-tide")
			spec := (*so)["spec"].(map[string]any)
			if spec["minReplicaCount"].(float64) != 0 || spec["maxReplicaCount"].(float64) != 6 {
				t.Errorf("replica bounds %v..%v; want 0..6", spec["minReplicaCount"], spec["maxReplicaCount"])
			}
			trig := spec["triggers"].([]any)[0].(map[string]any)
			if trig["type"] != tt.trigger {
				t.Errorf("trigger type %v, want %s", trig["type"], tt.trigger)
			}
			md := trig["metadata"].(map[string]any)
			for k, v := range tt.metadata {
				if md[k] != v {
					t.Errorf("trigger metadata %s = %v, want %q", k, md[k], v)
				}
			}
			if tt.auth {
				ta := decode[map[string]any](t, r, "TriggerAuthentication", "fraud-tide-queue")
				ref := (*ta)["spec"].(map[string]any)["secretTargetRef"].([]any)[0].(map[string]any)
				if ref["parameter"] != "password" || ref["name"] != "redis-auth" || trig["authenticationRef"].(map[string]any)["name"] != "fraud-tide-queue" {
					t.Errorf("Redis password: TriggerAuthentication %v, trigger %v", ref, trig)
				}
			} else if r.has("TriggerAuthentication", "fraud-tide-queue") {
				t.Error("a TriggerAuthentication with nothing to authenticate")
			}
		})
	}

	t.Run("egress", func(t *testing.T) {
		peer := "queue.peers[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=nats"
		r, err := helmTemplate(t, helm, "-f", values, "--set", "networkPolicy.enabled=true", "--set", "networkPolicy.restrictEgress=true", "--set", peer)
		if err != nil {
			t.Fatal(err)
		}
		np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide")
		var toBroker bool
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				if p.Port != nil && p.Port.IntValue() == 4222 && len(e.To) == 1 && e.To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "nats" {
					toBroker = true
				}
			}
		}
		if !toBroker {
			t.Errorf("no egress to the broker's pods on 4222: %+v", np.Spec.Egress)
		}
	})

	for _, bad := range []struct{ set, want string }{
		{"queue.urlSecret.name=", "queue.urlSecret.name"},
		{"queue.broker=kafka", `queue.broker "kafka"`},
		{"networkPolicy.enabled=true,networkPolicy.restrictEgress=true", "queue.peers"},
	} {
		_, err := helmTemplate(t, helm, "-f", values, "--set", bad.set)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--set %s: error %v, want one naming %s", bad.set, err, bad.want)
		}
	}
}
