#!/usr/bin/env bash
# Regenerates internal/oip/pb from proto/grpc_predict_v2.proto and
# internal/autoscaler/externalscaler from proto/externalscaler.proto (KEDA's).
#
# Needs protoc (Debian: apt-get install protobuf-compiler). The Go plugins are built
# at pinned versions into a cache folder, so the generated code does not depend on
# whatever happens to be on PATH; protoc-gen-go's version matches the
# google.golang.org/protobuf runtime in go.mod.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }

bin="${XDG_CACHE_HOME:-$HOME/.cache}/tide/protoc-plugins"
mkdir -p "$bin"
GOBIN="$bin" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$bin" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

PATH="$bin:$PATH" protoc \
  --proto_path=proto \
  --go_out=internal/oip/pb --go_opt=paths=source_relative \
  --go-grpc_out=internal/oip/pb --go-grpc_opt=paths=source_relative \
  grpc_predict_v2.proto
PATH="$bin:$PATH" protoc \
  --proto_path=proto \
  --go_out=internal/autoscaler/externalscaler --go_opt=paths=source_relative \
  --go-grpc_out=internal/autoscaler/externalscaler --go-grpc_opt=paths=source_relative \
  externalscaler.proto
gofmt -l internal/oip/pb internal/autoscaler/externalscaler | xargs -r gofmt -w
echo "generated: $(ls internal/oip/pb internal/autoscaler/externalscaler)"
