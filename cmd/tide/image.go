package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/image"
)

type imageBuildFlags struct {
	spec   image.Spec
	tag    string
	output string
	push   string
	pkg    string
}

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build Tide's container image (no Docker needed)",
	}
	cmd.AddCommand(newImageBuildCommand())
	return cmd
}

func newImageBuildCommand() *cobra.Command {
	var f imageBuildFlags
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
			return runImageBuild(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.spec.Binary, "binary", "", "linux tide-server binary to put in the image, static or cgo (default: build one)")
	fl.StringVar(&f.pkg, "package", "./cmd/tide-server", "Go package to build when --binary is not given")
	fl.StringVar(&f.spec.Model, "model", "", "model file or repository folder to bake in under /models")
	fl.StringVar(&f.spec.ONNXRuntimeLib, "onnxruntime-lib", "", "libonnxruntime.so to add; the binary is then built with cgo, with its shared libraries (required for .onnx models)")
	fl.StringVar(&f.tag, "tag", "tide.local/tide:"+version, "image reference recorded in the --output archive")
	fl.StringVar(&f.output, "output", "", "write a docker-archive tarball here")
	fl.StringVar(&f.push, "push", "", "push the image to this registry reference")
	fl.StringVar(&f.spec.Version, "image-version", version, "org.opencontainers.image.version label")
	fl.StringVar(&f.spec.Revision, "revision", "", "org.opencontainers.image.revision label (a commit)")
	fl.StringVar(&f.spec.Source, "source", "", "org.opencontainers.image.source label (a repository URL)")
	fl.StringToStringVar(&f.spec.Labels, "label", nil, "extra label KEY=VALUE (repeatable)")
	fl.StringVar(&f.spec.Architecture, "arch", "amd64", "architecture of the binary (GOARCH)")
	return cmd
}

func runImageBuild(cmd *cobra.Command, f imageBuildFlags) error {
	if f.output == "" && f.push == "" {
		return fmt.Errorf("nothing to do: give --output FILE and/or --push REF")
	}
	// Refuse an ONNX model without ONNX Runtime before spending a minute compiling.
	if f.spec.Model != "" && f.spec.ONNXRuntimeLib == "" {
		onnx, err := image.HasONNXModel(f.spec.Model)
		if err != nil {
			return err
		}
		if onnx {
			return fmt.Errorf("%s is an ONNX model: give --onnxruntime-lib PATH (the ONNX Runtime library; hack/install-onnxruntime.sh installs one)", f.spec.Model)
		}
	}
	if f.spec.ONNXRuntimeLib != "" {
		if _, err := os.Stat(f.spec.ONNXRuntimeLib); err != nil {
			return fmt.Errorf("--onnxruntime-lib: %w", err)
		}
	}
	if f.spec.Binary == "" {
		dir, err := os.MkdirTemp("", "tide-image-")
		if err != nil {
			return fmt.Errorf("build binary: %w", err)
		}
		defer os.RemoveAll(dir)
		f.spec.Binary = filepath.Join(dir, "tide-server")
		cgo := f.spec.ONNXRuntimeLib != ""
		if err := buildBinary(cmd, f.pkg, f.spec.Binary, f.spec.Architecture, f.spec.Version, cgo); err != nil {
			return err
		}
	}
	img, err := image.Build(f.spec)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "image %s (%s compressed)\n", digest, humanBytes(size))
	if f.output != "" {
		if err := image.WriteArchive(f.output, f.tag, img); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s as %s\n", f.output, f.tag)
	}
	if f.push != "" {
		ref, err := image.Push(cmd.Context(), f.push, img)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s\n", ref)
	}
	return nil
}

// buildBinary runs go build as ko does: -trimpath and no build ID so the bytes do not
// depend on the machine. Without cgo the binary runs in an image with no libc. With
// cgo (for ONNX Runtime) it links against this machine's glibc, whose libraries the
// image then carries; the netgo and osusergo tags keep name and user lookups in Go,
// so the image needs no NSS modules (libnss_*.so, loaded by glibc at run time).
func buildBinary(cmd *cobra.Command, pkg, out, arch, ver string, cgo bool) error {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -buildid= -X main.version=" + ver}
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if cgo {
		if runtime.GOOS != "linux" || arch != runtime.GOARCH {
			return fmt.Errorf("an image with ONNX Runtime needs a cgo binary, built here only for linux/%s (this is %s/%s); build one on such a machine and give it with --binary", arch, runtime.GOOS, runtime.GOARCH)
		}
		args = append(args, "-tags", "netgo,osusergo")
		env = append(env, "CGO_ENABLED=1")
	}
	args = append(args, "-o", out, pkg)
	build := exec.CommandContext(cmd.Context(), "go", args...)
	build.Env = env
	build.Stderr = cmd.ErrOrStderr()
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build %s: %w (or give a binary with --binary)", pkg, err)
	}
	return nil
}

// imageSize is the sum of the compressed layers: what a registry stores and a node pulls.
func imageSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, fmt.Errorf("image layers: %w", err)
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, fmt.Errorf("image layer size: %w", err)
		}
		total += n
	}
	return total, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
