package autoscaler

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// DeploymentScale raises one Deployment's replicas through its scale subresource,
// with the pod's service account: GET, and a merge PATCH only when the count is
// below the decision and above zero. It speaks plain HTTPS to the API server so that
// tide-server stays free of a Kubernetes client library; the chart's Role allows
// exactly get and patch on this one Deployment's scale.
type DeploymentScale struct {
	// Base is the API server's URL; Namespace and Name the Deployment's.
	Base, Namespace, Name string
	// TokenFile is re-read on each call: projected tokens rotate.
	TokenFile string
	Client    *http.Client
}

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InClusterScale is DeploymentScale for the Deployment name in the pod's own
// namespace, with the service account Kubernetes mounts.
func InClusterScale(name string) (*DeploymentScale, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("autoscaler: not in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset)")
	}
	ns, err := os.ReadFile(serviceAccountDir + "/namespace")
	if err != nil {
		return nil, fmt.Errorf("autoscaler: service account namespace: %w", errors.Unwrap(err))
	}
	ca, err := os.ReadFile(serviceAccountDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("autoscaler: service account CA: %w", errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("autoscaler: service account CA holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &DeploymentScale{Base: "https://" + net.JoinHostPort(host, port), Namespace: strings.TrimSpace(string(ns)), Name: name,
		TokenFile: serviceAccountDir + "/token", Client: &http.Client{Transport: tr, Timeout: 2 * time.Second}}, nil
}

// Raise implements Raiser.
func (k *DeploymentScale) Raise(ctx context.Context, n int) (int, error) {
	path := fmt.Sprintf("%s/apis/apps/v1/namespaces/%s/deployments/%s/scale", k.Base, k.Namespace, k.Name)
	var scale struct {
		Spec struct {
			Replicas int `json:"replicas"`
		} `json:"spec"`
	}
	if err := k.do(ctx, http.MethodGet, path, nil, &scale); err != nil {
		return 0, err
	}
	from := scale.Spec.Replicas
	if from == 0 || from >= n {
		return from, nil
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	return from, k.do(ctx, http.MethodPatch, path, patch, nil)
}

func (k *DeploymentScale) do(ctx context.Context, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if k.TokenFile != "" {
		tok, err := os.ReadFile(k.TokenFile)
		if err != nil {
			return fmt.Errorf("service account token: %w", errors.Unwrap(err))
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		// The API server's Status message is one line and names no server path.
		var st struct{ Message string }
		_ = json.Unmarshal(b, &st)
		return fmt.Errorf("%s deployments/%s/scale: %d %s", method, k.Name, resp.StatusCode, st.Message)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
