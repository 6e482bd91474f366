// Command imgtool builds a single-layer OCI image FROM scratch around one static binary
// and writes it as a docker-archive tarball, which `ctr images import` and
// `kind load image-archive` both accept. No registry and no Docker daemon are involved.
//
//	imgtool [-user UID:GID] [-libs] <binary> <image-ref> <path-in-image> <out.tar>
//
// With -libs the binary may be dynamically linked (a Debian package's, such as
// redis-server): the dynamic loader and every shared library ldd lists for it are
// copied from this machine into the image at the same paths.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// skeletonDirs exist in every image so the runtime can mount /etc/hosts,
// /etc/resolv.conf, /proc, /dev and friends into an otherwise empty root.
var skeletonDirs = []string{"etc", "tmp", "proc", "sys", "dev", "var", "var/run"}

func main() {
	user := flag.String("user", "65534:65534", "UID:GID the image runs as")
	withLibs := flag.Bool("libs", false, "add the dynamic loader and the shared libraries ldd lists for the binary")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: imgtool [-user UID:GID] [-libs] <binary> <image-ref> <path-in-image> <out.tar>")
	}
	flag.Parse()
	if flag.NArg() != 4 {
		flag.Usage()
		os.Exit(2)
	}
	a := flag.Args()
	var libs []string
	if *withLibs {
		var err error
		if libs, err = sharedLibraries(a[0]); err != nil {
			fmt.Fprintln(os.Stderr, "imgtool:", err)
			os.Exit(1)
		}
	}
	if err := build(a[0], a[1], a[2], a[3], *user, libs); err != nil {
		fmt.Fprintln(os.Stderr, "imgtool:", err)
		os.Exit(1)
	}
}

// sharedLibraries lists the absolute paths ldd prints for binary: "libX => /path
// (0x…)" and the loader's "/lib64/ld-linux-x86-64.so.2 (0x…)".
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case strings.Contains(line, "not found"):
			return nil, fmt.Errorf("ldd %s: %s", binary, strings.TrimSpace(line))
		}
	}
	return libs, nil
}

func build(binary, ref, pathInImage, out, user string, libs []string) error {
	if !strings.HasPrefix(pathInImage, "/") {
		return fmt.Errorf("path in image %q must be absolute", pathInImage)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image ref %q: %w", ref, err)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := layerWithBinary(data, strings.TrimPrefix(pathInImage, "/"), libs)
	if err != nil {
		return fmt.Errorf("build layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = v1.Config{Entrypoint: []string{pathInImage}, Env: []string{"PATH=/"}, User: user}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	// Write next to the target and rename, so a reader never sees half an archive.
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", out, err), os.Remove(tmp))
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	fmt.Printf("%s %s %s\n", ref, digest, out)
	return nil
}

// layerWithBinary returns an uncompressed tar with the skeleton directories and the
// binary, all with a fixed timestamp so the same binary always gives the same digest.
func layerWithBinary(data []byte, pathInLayer string, libs []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	for _, d := range skeletonDirs {
		dirs[d] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	// Shared libraries at their paths (a symlink's target's content under the
	// link's name, which is the name the loader asks for), their folders first.
	for _, lib := range libs {
		content, err := os.ReadFile(lib)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(lib, "/")
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: pathInLayer, Mode: 0o755, Size: int64(len(data)), ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
