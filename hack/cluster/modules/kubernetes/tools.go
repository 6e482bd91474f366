//go:build tools

// Package kubernetes pins the Kubernetes server and client commands the local test
// cluster runs. It is a separate module so the product's go.mod never carries
// k8s.io/kubernetes; `hack/cluster/cluster build` compiles the commands listed here.
package kubernetes

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
