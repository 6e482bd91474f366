package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ServerBuildTags are the build tags of the binaries in the image. grpcnotrace
// leaves out gRPC's golang.org/x/net/trace (a /debug/requests page Tide never
// serves, with html/template behind it): 3 MB less binary, and less of it mapped
// into every pod.
const ServerBuildTags = "grpcnotrace"

// MakeOptions is what `tide image build` is told.
type MakeOptions struct {
	Spec Spec
	// Package is the Go package built into Spec.Binary when that is empty.
	Package string
	// Tag is the reference recorded in the Output archive.
	Tag string
	// Output is a docker-archive tarball to write; Push a registry reference.
	Output, Push string
}

// Make builds the image that o describes: the binary (unless o.Spec.Binary names
// one), the image, then the archive and/or the push. Progress lines go to stdout,
// the compiler's output to stderr.
func Make(ctx context.Context, o MakeOptions, stdout, stderr io.Writer) error {
	f := o
	if f.Output == "" && f.Push == "" {
		return fmt.Errorf("nothing to do: give --output FILE and/or --push REF")
	}
	// Refuse an ONNX model without ONNX Runtime before spending a minute compiling.
	if f.Spec.Model != "" && f.Spec.ONNXRuntimeLib == "" {
		onnx, err := HasONNXModel(f.Spec.Model)
		if err != nil {
			return err
		}
		if onnx {
			return fmt.Errorf("%s is an ONNX model: give --onnxruntime-lib PATH (the ONNX Runtime library; hack/install-onnxruntime.sh installs one)", f.Spec.Model)
		}
	}
	if f.Spec.ONNXRuntimeLib != "" {
		if _, err := os.Stat(f.Spec.ONNXRuntimeLib); err != nil {
			return fmt.Errorf("--onnxruntime-lib: %w", err)
		}
	}
	if f.Spec.Binary == "" {
		dir, err := os.MkdirTemp("", "tide-image-")
		if err != nil {
			return fmt.Errorf("build binary: %w", err)
		}
		defer os.RemoveAll(dir)
		f.Spec.Binary = filepath.Join(dir, "tide-server")
		cgo := f.Spec.ONNXRuntimeLib != ""
		if err := BuildBinary(ctx, stderr, f.Package, f.Spec.Binary, f.Spec.Architecture, f.Spec.Version, cgo); err != nil {
			return err
		}
	}
	img, err := Build(f.Spec)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	size, err := CompressedSize(img)
	if err != nil {
		return err
	}
	out := stdout
	fmt.Fprintf(out, "image %s (%s compressed)\n", digest, humanBytes(size))
	if f.Output != "" {
		if err := WriteArchive(f.Output, f.Tag, img); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s as %s\n", f.Output, f.Tag)
	}
	if f.Push != "" {
		ref, err := Push(ctx, f.Push, img)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s\n", ref)
	}
	return nil
}

// BuildBinary runs go build as ko does: -trimpath and no build ID so the bytes do not
// depend on the machine. Without cgo the binary runs in an image with no libc. With
// cgo (for ONNX Runtime) it links against this machine's glibc, whose libraries the
// image then carries; the netgo and osusergo tags keep name and user lookups in Go,
// so the image needs no NSS modules (libnss_*.so, loaded by glibc at run time).
func BuildBinary(ctx context.Context, stderr io.Writer, pkg, out, arch, ver string, cgo bool) error {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -buildid= -X main.version=" + ver}
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	tags := ServerBuildTags
	if cgo {
		if runtime.GOOS != "linux" || arch != runtime.GOARCH {
			return fmt.Errorf("an image with ONNX Runtime needs a cgo binary, built here only for linux/%s (this is %s/%s); build one on such a machine and give it with --binary", arch, runtime.GOOS, runtime.GOARCH)
		}
		tags += ",netgo,osusergo"
		env = append(env, "CGO_ENABLED=1")
	}
	args = append(args, "-tags", tags)
	args = append(args, "-o", out, pkg)
	build := exec.CommandContext(ctx, "go", args...)
	build.Env = env
	build.Stderr = stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build %s: %w (or give a binary with --binary)", pkg, err)
	}
	return nil
}

// CompressedSize is the sum of the compressed layers: what a registry stores and a node pulls.
func CompressedSize(img v1.Image) (int64, error) {
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
