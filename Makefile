# gpu-mcp. `make demo` runs the server against built-in emulators; `make test` runs the checks.
GO ?= go
BIN := bin/gpu-mcp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build demo demo-offers test vet fmt schemas tools clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/gpu-mcp

# A tour of the demo: the tools, the providers, then GPU offers of all three emulated clouds.
demo:
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn tools
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn call list_providers
	$(GO) run ./cmd/gpu-mcp --demo --log-level warn call list_gpu_offers '{"limit":12}'

# The README's test command: formatting, vet, and every test under the race detector.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Regenerate schemas/ from the tools' Go structs; review the diff before committing.
schemas:
	UPDATE_SCHEMAS=1 $(GO) test ./tools -run TestSchemasUpToDate -count=1

tools:
	$(GO) run ./cmd/gpu-mcp tools

clean:
	rm -rf bin
