#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that Tide's onnx runtime opens at run time.
#
#   hack/install-onnxruntime.sh [DEST]
#
# DEST defaults to /usr/local/lib/tide/libonnxruntime.so.1.24.1; a libonnxruntime.so
# symlink is made next to it, which is one of the places Tide looks by default.
#
# The library comes from the npm package onnxruntime-node: `npm pack` downloads the
# tarball without running its install scripts (they try to fetch CUDA files), and
# both the tarball and the library inside it are checked against pinned sha256
# hashes, so a changed or corrupted download is refused rather than installed.
# Idempotent: when DEST already holds the pinned library nothing is downloaded.
set -euo pipefail

ORT_VERSION=1.24.1
TARBALL_SHA256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
LIB_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
LIB_IN_TARBALL=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

DEST=${1:-/usr/local/lib/tide/libonnxruntime.so.${ORT_VERSION}}

die() { echo "install-onnxruntime: $*" >&2; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

link_default_name() {
  # libonnxruntime.so next to the library, so the default search finds it.
  local dir link
  dir=$(dirname "$DEST")
  link="$dir/libonnxruntime.so"
  if [ "$(basename "$DEST")" != libonnxruntime.so ]; then
    ln -sfn "$(basename "$DEST")" "$link" || die "cannot create symlink $link"
  fi
}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "only linux x86_64 is supported by this script (this is $(uname -s)/$(uname -m)); get ONNX Runtime ${ORT_VERSION} from https://github.com/microsoft/onnxruntime/releases and point TIDE_ONNXRUNTIME_LIB at it" ;;
esac

if [ -f "$DEST" ] && [ "$(sha256 "$DEST")" = "$LIB_SHA256" ]; then
  link_default_name
  echo "ONNX Runtime ${ORT_VERSION} already installed at $DEST"
  exit 0
fi

command -v npm >/dev/null || die "npm not found (Debian: apt-get install npm); it is used only to download the onnxruntime-node tarball"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

mkdir -p "$(dirname "$DEST")" 2>/dev/null || die "cannot create $(dirname "$DEST")"
[ -w "$(dirname "$DEST")" ] || die "cannot write to $(dirname "$DEST") (run as root, or pass a DEST you can write)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "downloading onnxruntime-node@${ORT_VERSION} (npm pack, no install scripts)"
(cd "$work" && npm pack --silent --ignore-scripts "onnxruntime-node@${ORT_VERSION}" >/dev/null) ||
  die "npm pack onnxruntime-node@${ORT_VERSION} failed (is the npm registry reachable?)"
tarball="$work/onnxruntime-node-${ORT_VERSION}.tgz"
[ -f "$tarball" ] || die "npm pack did not produce $(basename "$tarball")"
got=$(sha256 "$tarball")
[ "$got" = "$TARBALL_SHA256" ] || die "tarball sha256 mismatch: got $got, want $TARBALL_SHA256"

tar -xzf "$tarball" -C "$work" "$LIB_IN_TARBALL" || die "tarball has no $LIB_IN_TARBALL"
got=$(sha256 "$work/$LIB_IN_TARBALL")
[ "$got" = "$LIB_SHA256" ] || die "library sha256 mismatch: got $got, want $LIB_SHA256"

# Copy then rename so a running server never sees a half-written library.
install -m 0644 "$work/$LIB_IN_TARBALL" "$DEST.tmp.$$" || die "cannot write $DEST"
mv -f "$DEST.tmp.$$" "$DEST" || die "cannot move the library into $DEST"
link_default_name
echo "installed ONNX Runtime ${ORT_VERSION} at $DEST"
