# gpu-mcp. `make demo` runs the server against built-in emulators; `make test` runs the checks.
GO ?= go
BIN := bin/gpu-mcp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build demo demo-offers test test-go e2e e2e-deps fuzz vet fmt schemas tools clean bench soak

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

test-go:
	@unformatted=$$(gofmt -l $(GOFILES)); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

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
	$(GO) test -run '^$$' -bench . -benchmem ./tools/ ./providers/huixingyun/ ./providers/datenfab/ ./providers/chenyu/

# 64 HTTP clients against gpu-mcp --demo for SOAKTIME: RSS at the end within 10% of RSS after the
# first minute.
soak: build
	$(MCPBENCH) -reps 0 -fan-calls 0 -soak $(SOAKTIME) $(BENCHFLAGS)

# Run each fuzz target for FUZZTIME (the seeds alone run in `make test`).
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./tools ./providers/huixingyun ./providers/datenfab ./providers/chenyu; do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; $(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $(GOFILES)

# Regenerate schemas/ from the tools' Go structs; review the diff before committing.
schemas:
	UPDATE_SCHEMAS=1 $(GO) test ./tools -run TestSchemasUpToDate -count=1

tools:
	$(GO) run ./cmd/gpu-mcp tools

clean:
	rm -rf bin
