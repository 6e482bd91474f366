package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
	"github.com/tideserve/tide/internal/rollout"
)

// canary_render.go renders a canary's objects, pure like render.go: the
// candidate's Deployment and Service, the router's control-token Secret, and
// the stable version as a promotion leaves it.

// version is what a rollout replaces: the model and the settings that decide
// how it answers. Its hash names a candidate.
type version struct {
	Source    tidev1.ModelSource          `json:"source"`
	Batching  *tidev1.Batching            `json:"batching,omitempty"`
	Resources corev1.ResourceRequirements `json:"resources"`
}

func (v version) hash() string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func stableVersion(m *tidev1.Model) version {
	return version{Source: m.Spec.Source, Batching: m.Spec.Batching, Resources: m.Spec.Resources}
}

// candidateVersion is spec.canary's version; what it leaves out is the stable's.
func candidateVersion(m *tidev1.Model) version {
	c := m.Spec.Canary
	v := version{Source: c.Source, Batching: m.Spec.Batching, Resources: m.Spec.Resources}
	if c.Batching != nil {
		v.Batching = c.Batching
	}
	if c.Resources != nil {
		v.Resources = *c.Resources
	}
	return v
}

// CandidateHash names the Model's candidate ("" without a canary).
func CandidateHash(m *tidev1.Model) string {
	if m.Spec.Canary == nil {
		return ""
	}
	return candidateVersion(m).hash()
}

// canaryPending: the Model has a candidate that differs from its stable version.
func canaryPending(m *tidev1.Model) bool {
	return m.Spec.Canary != nil && candidateVersion(m).hash() != stableVersion(m).hash()
}

// promoted: the status records this candidate as promoted, so the stable
// version serves it (until spec.source is changed to match, when nothing changes).
func promoted(m *tidev1.Model) bool {
	st := m.Status.Canary
	return canaryPending(m) && st != nil && st.Candidate == CandidateHash(m) && st.Phase == string(rollout.Promoted)
}

// servingModel is the Model as its stable Deployment serves it: with a promoted
// candidate's version in place of its own.
func servingModel(m *tidev1.Model) *tidev1.Model {
	if !promoted(m) {
		return m
	}
	return withVersion(m, candidateVersion(m))
}

func withVersion(m *tidev1.Model, v version) *tidev1.Model {
	c := m.DeepCopy()
	c.Spec.Source, c.Spec.Batching, c.Spec.Resources = v.Source, v.Batching, v.Resources
	return c
}

func candidateName(m *tidev1.Model) string { return m.Name + "-canary" }

// candidateSelectorLabels pick the candidate's pods only: the stable Service,
// PodDisruptionBudget and status select component server.
func candidateSelectorLabels(m *tidev1.Model) map[string]string {
	return map[string]string{labelName: "tide", labelInstance: m.Name, labelComponent: "canary"}
}

// CandidateURL is where the router sends the candidate's share.
func CandidateURL(m *tidev1.Model) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", candidateName(m), m.Namespace, httpPort)
}

// StableURL is where the router sends the stable version's share.
func StableURL(m *tidev1.Model) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", m.Name, m.Namespace, httpPort)
}

// CandidateDeployment renders the candidate's Deployment: the stable one's pod
// template with the candidate's version, a fixed replica count (it is judged,
// not autoscaled), and its own selector.
func CandidateDeployment(m *tidev1.Model, cfg Config) *appsv1.Deployment {
	c := withVersion(m, candidateVersion(m))
	c.Spec.Autoscaling = tidev1.Autoscaling{Mode: tidev1.AutoscaleNone}
	c.Spec.Replicas.Min = max(1, m.Spec.Canary.Replicas)
	return serverDeployment(c, cfg, candidateName(m), candidateSelectorLabels(m))
}

// CandidateService renders the candidate's Service (HTTP only: the router speaks HTTP).
func CandidateService(m *tidev1.Model) *corev1.Service {
	sel := candidateSelectorLabels(m)
	return &corev1.Service{
		ObjectMeta: objectMeta(m, candidateName(m), objectLabels(m, sel)),
		Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{
			{Name: "http", Port: httpPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
	}
}

// routerTokenKey is the control token's key in the router's Secret.
const routerTokenKey = "token"

func routerSecretName(m *tidev1.Model) string { return m.Name + "-router" }

// RouterSecret renders the Secret holding the router's control token. The
// operator creates it once with a random token and never rewrites it.
func RouterSecret(m *tidev1.Model, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: objectMeta(m, routerSecretName(m), objectLabels(m, activatorSelectorLabels(m))),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{routerTokenKey: []byte(token)},
		Immutable:  ptr.To(true),
	}
}
