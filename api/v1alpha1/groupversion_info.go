// Package v1alpha1 is the Tide operator's API: the Model kind, one object that
// becomes a served, autoscaled, observable model.
//
// +kubebuilder:object:generate=true
// +groupName=serving.tideserve.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of Model.
	GroupVersion = schema.GroupVersion{Group: "serving.tideserve.io", Version: "v1alpha1"}

	// SchemeBuilder registers this group's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Model and ModelList to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
