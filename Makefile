# Tide — the commands the README promises. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# grpcnotrace: tide-server leaves out gRPC's x/net/trace pages (unused), 3 MB less.
SERVER_TAGS := grpcnotrace

.PHONY: help build build-static demo test test-deps unit fuzz bench e2e generate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

build: ## build bin/tide-server (what pods run), bin/tide (the CLI) and bin/tide-operator
	$(GO) build -trimpath -tags $(SERVER_TAGS) -ldflags '$(LDFLAGS)' -o bin/tide-server ./cmd/tide-server
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tide ./cmd/tide
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tide-operator ./cmd/tide-operator

build-static: ## build bin/tide-server-static (no cgo: every format but ONNX; runs FROM scratch)
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(SERVER_TAGS) -ldflags '$(LDFLAGS)' -o bin/tide-server-static ./cmd/tide-server

demo: ## serve the tutorial's fraud model, named fraud, on :8080 (HTTP) and :8081 (gRPC)
	GO='$(GO)' SERVER_TAGS='$(SERVER_TAGS)' LDFLAGS='$(LDFLAGS)' bash hack/demo.sh

test-deps: ## install what the tests need (Debian packages, ONNX Runtime)
	bash hack/install-test-deps.sh

unit: ## go vet + all unit and integration tests (fuzz seeds included)
	@test -z "$$(gofmt -l cmd internal test api deploy hack/gen-operator)" || { echo "gofmt needed:"; gofmt -l cmd internal test api deploy hack/gen-operator; exit 1; }
	$(GO) vet ./...
	TIDE_REQUIRE_INTEGRATION=1 $(GO) test -count=1 ./...

test: test-deps unit ## set up and run every test that needs no cluster

fuzz: ## run every fuzz target for FUZZTIME (default 20s) each
	bash hack/fuzz.sh $${FUZZTIME:-20s}

bench: ## Go benchmarks of the hot paths
	$(GO) test -run XXX -bench . -benchmem ./internal/...

e2e: ## bring up the local Kubernetes, run the e2e tests, tear it down
	bash hack/ci-e2e.sh

generate: ## regenerate the operator's deepcopy, CRD, RBAC rules, kubectl bundle and spec reference
	bash hack/gen-operator.sh

clean:
	rm -rf bin
