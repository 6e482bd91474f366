//go:build ignore

// ingress-gce-crds prints GKE's BackendConfig and FrontendConfig
// CustomResourceDefinitions as ingress-gce's controller installs them: ingress-gce
// publishes no YAML for them, it builds them at start from its generated OpenAPI
// definitions (pkg/crd). update.sh copies this file into an ingress-gce checkout
// and runs it there against its vendored modules; it is not part of Tide's build.
package main

import (
	"os"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	apisbackendconfig "k8s.io/ingress-gce/pkg/apis/backendconfig"
	backendconfigv1 "k8s.io/ingress-gce/pkg/apis/backendconfig/v1"
	backendconfigv1beta1 "k8s.io/ingress-gce/pkg/apis/backendconfig/v1beta1"
	apisfrontendconfig "k8s.io/ingress-gce/pkg/apis/frontendconfig"
	frontendconfigv1beta1 "k8s.io/ingress-gce/pkg/apis/frontendconfig/v1beta1"
	"k8s.io/ingress-gce/pkg/crd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

func main() {
	client := fake.NewSimpleClientset()
	// EnsureCRD waits for the Established condition; the fake API server sets it
	// on create, as a real one does once the CRD's names are accepted.
	client.PrependReactor("create", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c := a.(k8stesting.CreateAction).GetObject().(*apiextensionsv1.CustomResourceDefinition)
		c.Status.Conditions = append(c.Status.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{
			Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue})
		return false, nil, nil
	})
	handler := crd.NewCRDHandler(client, klog.Background())
	// The arguments of pkg/backendconfig.CRDMeta and pkg/frontendconfig.CRDMeta
	// (those packages pull in the whole controller); cmd/glbc ensures both
	// namespaced.
	metas := []*crd.CRDMeta{
		crd.NewCRDMeta(apisbackendconfig.GroupName, "BackendConfig", "BackendConfigList", "backendconfig", "backendconfigs",
			[]*crd.Version{
				crd.NewVersion("v1", "k8s.io/ingress-gce/pkg/apis/backendconfig/v1.BackendConfig", backendconfigv1.GetOpenAPIDefinitions, nil, false),
				crd.NewVersion("v1beta1", "k8s.io/ingress-gce/pkg/apis/backendconfig/v1beta1.BackendConfig", backendconfigv1beta1.GetOpenAPIDefinitions, nil, false),
			}, "bc"),
		crd.NewCRDMeta(apisfrontendconfig.GroupName, "FrontendConfig", "FrontendConfigList", "frontendconfig", "frontendconfigs",
			[]*crd.Version{
				crd.NewVersion("v1beta1", "k8s.io/ingress-gce/pkg/apis/frontendconfig/v1beta1.FrontendConfig", frontendconfigv1beta1.GetOpenAPIDefinitions, nil, false),
			}),
	}
	for i, meta := range metas {
		c, err := handler.EnsureCRD(meta, true)
		if err != nil {
			panic(err)
		}
		// What an API server would be given: no status, no server-set metadata.
		b, err := yaml.Marshal(map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": c.Name},
			"spec":       c.Spec,
		})
		if err != nil {
			panic(err)
		}
		if i > 0 {
			os.Stdout.WriteString("---\n")
		}
		os.Stdout.Write(b)
	}
}
