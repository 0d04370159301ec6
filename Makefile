# gpu-mcp. `make demo` runs the server against built-in emulators; `make test` runs the checks.
GO ?= go
BIN := bin/gpu-mcp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build demo demo-offers test test-go e2e e2e-deps fuzz vet fmt schemas tools clean bench soak release-check postgres

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/gpu-mcp

# A tour of the demo: the tools, the providers, then GPU offers of all three emulated clouds.
demo:
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn tools
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn call list_providers
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn call list_gpu_offers '{"limit":12}'

# The README's test command: formatting, vet, every Go test under the race detector, then the
# end-to-end suites with MCP clients written by others (TypeScript SDK, Inspector, conformance).
test: test-go e2e

GOFILES = $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')

# go.mod and go.sum must be what `go mod tidy` makes of the imports: -diff prints the change
# and fails, so a dependency added without tidying (or left marked indirect) fails the tests.
test-go:
	$(GO) mod tidy -diff
	@unformatted=$$(gofmt -l $(GOFILES)); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@# The race detector slows it too much for the issue's 50,000 sessions: they run here.
	$(GO) test -count=1 -run '^TestSessionFloodStaysUnderTheCap$$' ./cmd/gpu-mcp/

# npm installs the e2e clients (and Node 22 for the Inspector and the conformance suite) from
# e2e/package-lock.json, again only when the lock file changed.
e2e-deps: e2e/node_modules/.package-lock.json

e2e/node_modules/.package-lock.json: e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

e2e: build e2e-deps
	cd e2e && node --test --test-concurrency=1 clients/ conformance/

# Speed and memory (BENCHMARKS.md): the built binary, a bare mcp-go server (bench/baremcp) and the
# reference server @modelcontextprotocol/server-everything (npm ci only when bench/package-lock.json
# changed), side by side over stdio and streamable HTTP, then the Go micro-benchmarks. Takes about
# 8 minutes; never part of `make test`. SOAK=1 adds the memory soak (`make soak`, SOAKTIME long);
# BENCHFLAGS passes flags to the harness (`go run ./bench/cmd/mcpbench -h` lists them).
SOAKTIME ?= 10m
BENCHFLAGS ?=
MCPBENCH = $(GO) run ./bench/cmd/mcpbench -bin $(BIN) -bare bin/baremcp \
	-ref bench/node_modules/@modelcontextprotocol/server-everything/dist/index.js

bench/node_modules/.package-lock.json: bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: build bench/node_modules/.package-lock.json
	$(GO) build -o bin/baremcp ./bench/baremcp
	$(MCPBENCH) $(if $(SOAK),-soak $(SOAKTIME)) $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./tools/ ./providers/huixingyun/ ./providers/datenfab/ ./providers/chenyu/ ./state/ ./fleet/remote/ ./cmd/gpu-mcp/

# 64 HTTP clients against gpu-mcp --demo for SOAKTIME: RSS at the end within 10% of RSS after the
# first minute.
soak: build
	$(MCPBENCH) -reps 0 -fan-calls 0 -soak $(SOAKTIME) $(BENCHFLAGS)

# Run each fuzz target for FUZZTIME (the seeds alone run in `make test`).
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./tools ./cmd/gpu-mcp ./providers/huixingyun ./providers/datenfab ./providers/chenyu ./fleet/remote; do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; $(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

# The release archives, as a tagged release would make them, into dist/: goreleaser checks
# .goreleaser.yaml, builds the six targets (linux, darwin, windows x amd64, arm64) and writes the
# checksums, which are then verified. goreleaser is installed once, at the pinned version, from
# the Go module proxy into bin/. Not part of `make test`.
GORELEASER_VERSION := v2.17.0
GORELEASER := bin/goreleaser-$(GORELEASER_VERSION)/goreleaser

$(GORELEASER):
	GOBIN=$(CURDIR)/$(dir $(GORELEASER)) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

release-check: $(GORELEASER)
	$(GORELEASER) check
	$(GORELEASER) release --snapshot --clean --skip=publish
	cd dist && sha256sum --check --strict *_checksums.txt
	@n=$$(ls dist/*.tar.gz dist/*.zip | wc -l); \
	  if [ "$$n" -ne 6 ]; then echo "release-check: $$n archives in dist/, want 6"; exit 1; fi
	@ls -l dist/*.tar.gz dist/*.zip

# A throwaway PostgreSQL on loopback for the state store's tests (state/): eval its output, or
# export the GPU_MCP_TEST_POSTGRES_URL line it prints, then `make test`; it says how to stop it.
postgres:
	@bash .ci/postgres start

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $(GOFILES)

# Regenerate schemas/ from the tools' Go structs, and testdata/plans from the plans the tools
# make on the emulators; review the diff before committing.
schemas:
	UPDATE_SCHEMAS=1 $(GO) test ./tools -run TestSchemasUpToDate -count=1
	UPDATE_GOLDEN=1 $(GO) test ./tools -run TestPlansSayEachThingOnce -count=1

tools:
	$(GO) run ./cmd/gpu-mcp tools

clean:
	rm -rf bin dist
