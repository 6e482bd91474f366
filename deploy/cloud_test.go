package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// The EKS and GKE objects name their providers' objects by annotation or
// reference: a Service's BackendConfig, an Ingress's FrontendConfig or
// IngressClass, an IngressClass's IngressClassParams, a TargetGroupBinding's
// Service. The project cluster's API server, given the providers' CRDs, checks
// each object's fields (test/e2e/cloud_overlays_test.go); nothing there checks
// that the names meet, or that a load balancer's health check asks what the
// pods' readiness probe asks. These tests do, for the overlays and the chart's
// values files alike.

// The provider objects' fields these tests read; the API server checks the rest.
type backendConfig struct {
	Spec struct {
		HealthCheck struct {
			Type        string `json:"type"`
			RequestPath string `json:"requestPath"`
			Port        int    `json:"port"`
		} `json:"healthCheck"`
		TimeoutSec         int `json:"timeoutSec"`
		ConnectionDraining struct {
			DrainingTimeoutSec int `json:"drainingTimeoutSec"`
		} `json:"connectionDraining"`
	} `json:"spec"`
}

type frontendConfig struct {
	Spec struct {
		RedirectToHTTPS struct {
			Enabled bool `json:"enabled"`
		} `json:"redirectToHttps"`
	} `json:"spec"`
}

type ingressClassParams struct {
	Spec struct {
		Scheme          string   `json:"scheme"`
		TargetType      string   `json:"targetType"`
		CertificateARN  []string `json:"certificateArn"`
		SSLRedirectPort string   `json:"sslRedirectPort"`
	} `json:"spec"`
}

type targetGroupBinding struct {
	Spec struct {
		ServiceRef struct {
			Name string `json:"name"`
			Port string `json:"port"`
		} `json:"serviceRef"`
		TargetType     string `json:"targetType"`
		TargetGroupARN string `json:"targetGroupARN"`
	} `json:"spec"`
}

// decodeLoose decodes the fields T names and ignores the others (a provider
// object's full schema is its CRD's business).
func decodeLoose[T any](t *testing.T, r rendered, kind, name string) *T {
	t.Helper()
	return decodeWith[T](t, r, kind, name, yaml.Unmarshal)
}

// readiness is what the pods' readiness probe asks: its path and the number of
// the container port it names.
func readiness(t *testing.T, d *appsv1.Deployment) (path string, port int32) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("deployment %s: no HTTP readiness probe", d.Name)
	}
	for _, cp := range c.Ports {
		if cp.Name == p.HTTPGet.Port.String() || cp.ContainerPort == p.HTTPGet.Port.IntVal {
			return p.HTTPGet.Path, cp.ContainerPort
		}
	}
	t.Fatalf("deployment %s: readiness probe port %s is none of the container's", d.Name, p.HTTPGet.Port.String())
	return "", 0
}

// checkGKE: the Service is a NEG backend with a BackendConfig whose health check
// is the readiness probe, and the Ingress's FrontendConfig exists (its HTTPS
// redirect only with TLS to redirect to).
func checkGKE(t *testing.T, r rendered, deployment, service, ingress string) {
	t.Helper()
	d := decode[appsv1.Deployment](t, r, "Deployment", deployment)
	svc := decode[corev1.Service](t, r, "Service", service)
	var neg struct {
		Ingress bool `json:"ingress"`
	}
	if err := json.Unmarshal([]byte(svc.Annotations["cloud.google.com/neg"]), &neg); err != nil || !neg.Ingress {
		t.Errorf("service %s: cloud.google.com/neg %q, want NEGs for the Ingress", service, svc.Annotations["cloud.google.com/neg"])
	}
	var backend struct {
		Default string `json:"default"`
	}
	if err := json.Unmarshal([]byte(svc.Annotations["cloud.google.com/backend-config"]), &backend); err != nil || backend.Default == "" {
		t.Fatalf("service %s: cloud.google.com/backend-config %q names no default BackendConfig", service, svc.Annotations["cloud.google.com/backend-config"])
	}
	bc := decodeLoose[backendConfig](t, r, "BackendConfig", backend.Default)
	path, port := readiness(t, d)
	if hc := bc.Spec.HealthCheck; hc.Type != "HTTP" || hc.RequestPath != path || int32(hc.Port) != port {
		t.Errorf("BackendConfig %s health check %+v; want HTTP %s on port %d, the readiness probe", backend.Default, hc, path, port)
	}
	if drain := bc.Spec.ConnectionDraining.DrainingTimeoutSec; drain <= 0 || int64(drain) > *d.Spec.Template.Spec.TerminationGracePeriodSeconds {
		t.Errorf("BackendConfig %s drains %ds; want some, within the pod's grace period (%ds)", backend.Default, drain, *d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	}
	ing := decode[networkingv1.Ingress](t, r, "Ingress", ingress)
	if ing.Annotations["kubernetes.io/ingress.class"] != "gce" {
		t.Errorf("ingress %s: class annotation %q, want gce", ingress, ing.Annotations["kubernetes.io/ingress.class"])
	}
	name := ing.Annotations["networking.gke.io/v1beta1.FrontendConfig"]
	if name == "" {
		t.Fatalf("ingress %s names no FrontendConfig", ingress)
	}
	if fc := decodeLoose[frontendConfig](t, r, "FrontendConfig", name); fc.Spec.RedirectToHTTPS.Enabled && len(ing.Spec.TLS) == 0 {
		t.Errorf("FrontendConfig %s redirects to HTTPS but ingress %s has no TLS", name, ingress)
	}
}

// checkALB: the Ingress's class is the AWS Load Balancer Controller's, its
// parameters exist and terminate TLS with a certificate when they redirect to
// it, targets are the pods' IPs, and the health check is the readiness probe.
func checkALB(t *testing.T, r rendered, deployment, ingress string) {
	t.Helper()
	d := decode[appsv1.Deployment](t, r, "Deployment", deployment)
	ing := decode[networkingv1.Ingress](t, r, "Ingress", ingress)
	if ing.Spec.IngressClassName == nil {
		t.Fatalf("ingress %s names no class", ingress)
	}
	class := decode[networkingv1.IngressClass](t, r, "IngressClass", *ing.Spec.IngressClassName)
	p := class.Spec.Parameters
	if class.Spec.Controller != "ingress.k8s.aws/alb" || p == nil || p.APIGroup == nil || *p.APIGroup != "elbv2.k8s.aws" || p.Kind != "IngressClassParams" {
		t.Fatalf("IngressClass %s: %+v; want the AWS Load Balancer Controller's with IngressClassParams", class.Name, class.Spec)
	}
	params := decodeLoose[ingressClassParams](t, r, "IngressClassParams", p.Name)
	if params.Spec.TargetType != "ip" {
		t.Errorf("IngressClassParams %s: target type %q, want ip (the pods, not node ports)", p.Name, params.Spec.TargetType)
	}
	if params.Spec.SSLRedirectPort != "" && len(params.Spec.CertificateARN) == 0 {
		t.Errorf("IngressClassParams %s redirects to %s without a certificate", p.Name, params.Spec.SSLRedirectPort)
	}
	path, _ := readiness(t, d)
	if got := ing.Annotations["alb.ingress.kubernetes.io/healthcheck-path"]; got != path {
		t.Errorf("ingress %s: ALB health check path %q, want the readiness probe's %s", ingress, got, path)
	}
}

func TestKustomizeCloudObjects(t *testing.T) {
	kubectl := kubectlBinary(t)
	build := func(t *testing.T, dir string) rendered {
		t.Helper()
		out, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		r, err := splitDocs(out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("gke", func(t *testing.T) {
		checkGKE(t, build(t, "kustomize/overlays/gke"), "tide", "tide", "tide")
	})
	t.Run("eks-alb", func(t *testing.T) {
		checkALB(t, build(t, "kustomize/overlays/eks-alb"), "tide", "tide")
	})
	t.Run("aws-target-group-binding", func(t *testing.T) {
		// The component joins an overlay; a kustomization beside the test's
		// temporary directory adds it to the base (kustomize takes relative paths only).
		dir := t.TempDir()
		abs, _ := filepath.Abs("kustomize")
		rel, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		k := "resources: [" + rel + "/base]\ncomponents: [" + rel + "/components/aws-target-group-binding]\n"
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		r := build(t, dir)
		svc := decode[corev1.Service](t, r, "Service", "tide")
		tgb := decodeLoose[targetGroupBinding](t, r, "TargetGroupBinding", "tide")
		named := false
		for _, p := range svc.Spec.Ports {
			named = named || p.Name == tgb.Spec.ServiceRef.Port
		}
		if tgb.Spec.ServiceRef.Name != svc.Name || !named || tgb.Spec.TargetType != "ip" || !strings.HasPrefix(tgb.Spec.TargetGroupARN, "arn:aws:elasticloadbalancing:") {
			t.Errorf("TargetGroupBinding %+v; want the pods' IPs behind service %s's port by name, in a target group ARN", tgb.Spec, svc.Name)
		}
	})
}

// TestCloudValues: the chart with ci/gke-values.yaml and ci/eks-values.yaml, the
// provider objects from extraObjects named through templated annotations, so
// that they follow the release name.
func TestCloudValues(t *testing.T) {
	helm := helmBinary(t)
	for _, release := range []string{"fraud", "other"} {
		t.Run("gke/"+release, func(t *testing.T) {
			r, err := helmTemplateRelease(t, helm, release, "-f", filepath.Join(chartDir, "ci", "gke-values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			name := release + "-tide"
			checkGKE(t, r, name, name, name)
		})
		t.Run("eks/"+release, func(t *testing.T) {
			r, err := helmTemplateRelease(t, helm, release, "-f", filepath.Join(chartDir, "ci", "eks-values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			checkALB(t, r, release+"-tide", release+"-tide")
		})
	}
	// Without extraObjects the chart renders no further object.
	r, err := helmTemplate(t, helm)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range r.kinds() {
		if strings.HasPrefix(k, "BackendConfig/") || strings.HasPrefix(k, "IngressClass") {
			t.Errorf("default values render %s", k)
		}
	}
}
