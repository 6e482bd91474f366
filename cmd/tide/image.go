package main

import (
	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/image"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build Tide's container image (no Docker needed)",
	}
	cmd.AddCommand(newImageBuildCommand())
	return cmd
}

func newImageBuildCommand() *cobra.Command {
	var f image.MakeOptions
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build an OCI image of tide-server serve, optionally with a model baked in",
		Long: `Build an OCI image around tide-server (the production binary: serve and
activator, no load generator or image builder), from scratch, with no Docker daemon:
the binary at /usr/local/bin/tide-server (and /usr/local/bin/tide linking to it), an
optional model under /models, an optional ONNX Runtime library; user 65532, no shell,
entrypoint "tide-server serve". The same inputs give
the same digest. Without --binary, the binary is built from --package with
CGO_ENABLED=0 GOOS=linux -trimpath (needs the Go toolchain).

ONNX models need ONNX Runtime, which a static binary cannot load: with
--onnxruntime-lib (required when the model is or holds an .onnx file) the binary is
built with cgo against this machine's glibc instead, and the image gets one more layer
with the dynamic loader and exactly the shared libraries the binary and ONNX Runtime
need (libc, libm, libstdc++, libgcc_s, ...), copied from this machine.

Write a docker-archive tarball (--output, for kind load image-archive, ctr images
import, docker load) and/or push to a registry (--push REF, credentials from
~/.docker/config.json).`,
		Example: `  tide image build --model examples/fraud/model.pkl --output tide.tar
  kind load image-archive tide.tar
  tide image build --model ./models --push registry.example.com/ml/tide:v1
  tide image build --model mlp.onnx --onnxruntime-lib /usr/local/lib/tide/libonnxruntime.so.1.24.1 --output onnx.tar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return image.Make(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Spec.Binary, "binary", "", "linux tide-server binary to put in the image, static or cgo (default: build one)")
	fl.StringVar(&f.Package, "package", "./cmd/tide-server", "Go package to build when --binary is not given")
	fl.StringVar(&f.Spec.Model, "model", "", "model file or repository folder to bake in under /models")
	fl.StringVar(&f.Spec.ONNXRuntimeLib, "onnxruntime-lib", "", "libonnxruntime.so to add; the binary is then built with cgo, with its shared libraries (required for .onnx models)")
	fl.StringVar(&f.Tag, "tag", "tide.local/tide:"+version, "image reference recorded in the --output archive")
	fl.StringVar(&f.Output, "output", "", "write a docker-archive tarball here")
	fl.StringVar(&f.Push, "push", "", "push the image to this registry reference")
	fl.StringVar(&f.Spec.Version, "image-version", version, "org.opencontainers.image.version label")
	fl.StringVar(&f.Spec.Revision, "revision", "", "org.opencontainers.image.revision label (a commit)")
	fl.StringVar(&f.Spec.Source, "source", "", "org.opencontainers.image.source label (a repository URL)")
	fl.StringToStringVar(&f.Spec.Labels, "label", nil, "extra label KEY=VALUE (repeatable)")
	fl.StringVar(&f.Spec.Architecture, "arch", "amd64", "architecture of the binary (GOARCH)")
	return cmd
}
