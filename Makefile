# wre — build, test and run. `make help` lists the targets.
SHELL := /bin/bash
# Exported: the control plane harness builds its binaries with $GO too.
export GO ?= go
# Cache for control plane binaries and other tools, outside the checkout.
export WRE_CACHE_DIR ?= $(HOME)/.cache/wre
STATICCHECK_VERSION := v0.8.2
# Built once per version and Go release (a host binary, also for linting wasm code).
STATICCHECK = $(WRE_CACHE_DIR)/tools/staticcheck-$(STATICCHECK_VERSION)-$(shell $(GO) env GOVERSION)/staticcheck
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
# Go modules nested in this repository besides the root and the control plane tools.
SUBMODULES := $(sort $(patsubst ./%/go.mod,%,$(shell find . -name go.mod -not -path ./go.mod -not -path './test/tools/*' -not -path './.git/*' -not -path '*/testdata/*')))
# The only modules guest-sdk/go.mod may require directly (make check).
GUEST_SDK_DEPS := k8s.io/api k8s.io/apimachinery github.com/go-logr/logr
# Example reconciler modules (each its own Go module compiled to wasm).
WASM_MODULES := $(patsubst %/go.mod,%,$(wildcard modules/*/go.mod))
TEST_FLAGS ?= -race -timeout 40m
# Statement coverage that engine/ and host/ must each keep (test/coverage.awk).
COVER_MIN := 85
COVER_PROFILE := bin/cover.out
WRE_CLUSTER := $(GO) run ./test/controlplane/cmd/wre-cluster

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: test
test: check lint controlplane tools image-binary unit-and-integration submodule-tests ## THE test command: vet, gofmt, staticcheck, every unit, integration and end-to-end test, coverage floor
	@echo "make test: all suites passed"

.PHONY: check
check: guest-sdk-deps ## go vet and gofmt on every Go module of the repository
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@set -e; for m in $(SUBMODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet ./...); done
	@# Guest code also compiles for wasm, where the SDK's exports live.
	cd guest-sdk && GOOS=wasip1 GOARCH=wasm $(GO) vet ./wre ./client ./lean ./abi/... ./internal/...
	@set -e; for m in $(WASM_MODULES); do echo "go vet wasip1 ($$m)"; (cd $$m && GOOS=wasip1 GOARCH=wasm $(GO) vet .); done

.PHONY: guest-sdk-deps
guest-sdk-deps: ## guest-sdk/go.mod requires directly only k8s.io/api, k8s.io/apimachinery and logr
	@# Every module compiled to wasm links the SDK and whatever it requires.
	@direct=$$(cd guest-sdk && $(GO) list -m -f '{{if not (or .Main .Indirect)}}{{.Path}}{{end}}' all) || exit 1; \
	  extra=$$(grep -vxF $(addprefix -e ,$(GUEST_SDK_DEPS)) <<<"$$direct"); \
	  if [ -n "$$extra" ]; then echo "guest-sdk/go.mod requires directly:" $$extra; \
	  echo "the guest SDK may require directly only $(GUEST_SDK_DEPS) (issue #4): replace the dependency with local code, then go mod tidy"; exit 1; fi

.PHONY: unit-and-integration
unit-and-integration: ## go test -race on the root module (integration suites start a local control plane), then the coverage floor
	@mkdir -p bin
	$(GO) test $(TEST_FLAGS) -coverprofile=$(COVER_PROFILE) ./...
	@awk -v min=$(COVER_MIN) -f test/coverage.awk $(COVER_PROFILE)

.PHONY: submodule-tests
submodule-tests: tools image-binary ## go test on the guest SDK, the example modules, deploy/ and dashboards/
	@set -e; for m in $(SUBMODULES); do echo "go test ($$m)"; \
	  (cd $$m && WRE_BINARY=$(CURDIR)/bin/wre $(GO) test $(TEST_FLAGS) ./...); done

.PHONY: tools
tools: ## install promtool and prometheus (Debian package) when missing
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  echo "installing Debian's prometheus package (promtool, prometheus)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if [ -n "$$SUDO" ] && ! sudo -n true 2>/dev/null; then \
	    echo "make tools: promtool and prometheus are missing and installing them needs root or passwordless sudo:"; \
	    echo "  apt-get install prometheus   (or put promtool and prometheus on PATH)"; exit 1; fi; \
	  command -v apt-get >/dev/null || { echo "make tools: no apt-get here; put promtool and prometheus (2.x or later) on PATH"; exit 1; }; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi
	@promtool --version | head -n 1

.PHONY: install
install: ## go install the wre command into $(go env GOBIN), else $(go env GOPATH)/bin
	$(GO) install ./cmd/wre
	@bin=$$($(GO) env GOBIN); bin=$${bin:-$$($(GO) env GOPATH)/bin}; echo "installed $$bin/wre"; \
	  case ":$$PATH:" in *":$$bin:"*) ;; *) echo "add it to PATH: export PATH=\"$$bin:\$$PATH\"";; esac

.PHONY: image-binary
image-binary: ## the static wre binary for the container image: bin/wre
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/wre ./cmd/wre

.PHONY: controlplane
controlplane: ## build etcd, kube-apiserver, kube-controller-manager from source into $(WRE_CACHE_DIR)
	$(WRE_CLUSTER) build

.PHONY: cluster-up
cluster-up: controlplane ## start a local control plane in the background; prints the kubeconfig
	$(WRE_CLUSTER) up

.PHONY: cluster-down
cluster-down: ## stop the control plane started by cluster-up
	$(WRE_CLUSTER) down

.PHONY: demo
demo: ## control plane + engine + example modules with sample objects, until Ctrl-C (which exits 0)
	@# The demo builds the control plane itself, in parallel with wre and the modules.
	@echo "==> compiling the demo program (test/demo)"
	@mkdir -p bin
	@# A line per 25 packages compiled, and one every 20 s while a large one compiles.
	@set -o pipefail; (s=0; while sleep 20; do s=$$((s+20)); echo "    [$${s}s] still compiling the demo program"; done) & beat=$$!; \
	  $(GO) build -v -o bin/demo ./test/demo 2>&1 | \
	  awk '/[ :]/ { print; next } { n++ } n % 25 == 0 { print "    " n " packages compiled, now " $$0; fflush() }'; \
	  rc=$$?; kill $$beat; exit $$rc
	bin/demo

.PHONY: modules
modules: ## build the example modules to bin/modules/*.wasm
	@mkdir -p bin/modules
	@set -e; for m in $(WASM_MODULES); do n=$$(basename $$m); echo "build $$n"; \
	  (cd $$m && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $(CURDIR)/bin/modules/$$n.wasm .); done

.PHONY: deploy-examples
deploy-examples: image-binary ## package the example modules as ConfigMaps for deploy/overlays/examples
	WRE=$(CURDIR)/bin/wre deploy/overlays/examples/package-modules.sh

.PHONY: lint
lint: ## staticcheck (pinned) on every Go module, guest code also for wasip1 as check vets it; reports all, then fails
	@test -x $(STATICCHECK) || GOBIN=$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@rc=0; \
	  echo "staticcheck (root)"; $(STATICCHECK) ./... || rc=1; \
	  for m in $(SUBMODULES); do echo "staticcheck ($$m)"; (cd $$m && $(STATICCHECK) ./...) || rc=1; done; \
	  echo "staticcheck wasip1 (guest-sdk)"; (cd guest-sdk && GOOS=wasip1 GOARCH=wasm $(STATICCHECK) ./wre ./client ./internal/...) || rc=1; \
	  for m in $(WASM_MODULES); do echo "staticcheck wasip1 ($$m)"; (cd $$m && GOOS=wasip1 GOARCH=wasm $(STATICCHECK) .) || rc=1; done; \
	  exit $$rc

.PHONY: cover
cover: controlplane ## statement coverage of engine/ and host/ by their own tests (make test checks the whole suite's)
	@mkdir -p bin
	$(GO) test -race -coverprofile=$(COVER_PROFILE) ./engine/... ./host/...
	@awk -v min=$(COVER_MIN) -f test/coverage.awk $(COVER_PROFILE)

.PHONY: bench
bench: controlplane image-binary ## run the benchmark suite and regenerate docs/benchmarks.md (BENCH=name,... for some)
	$(GO) run ./test/bench $(if $(BENCH),-only $(BENCH))
