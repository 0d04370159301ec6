# syntax=docker/dockerfile:1
# gpu-mcp as a container: an MCP stdio server by default,
#   docker run -i --rm -e HUIXINGYUN_TOKEN ghcr.io/gpu-mcp/gpu-mcp:latest
# VERSION is what `gpu-mcp version` and the MCP serverInfo report (docker build --build-arg VERSION=0.1.0).

FROM golang:1.26 AS build
WORKDIR /src
# The modules first, in their own layer, so that a change of source does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/gpu-mcp ./cmd/gpu-mcp

# distroless/static: no shell, no package manager, no libc; CA certificates for the vendors'
# HTTPS APIs and a nonroot user (uid 65532) are all it brings.
FROM gcr.io/distroless/static-debian12:nonroot
# The MCP registry checks this label to tie the image to the server name in server.json.
LABEL io.modelcontextprotocol.server.name="io.github.gpu-mcp/gpu-mcp" \
      org.opencontainers.image.title="gpu-mcp" \
      org.opencontainers.image.description="MCP server to find, rent and run GPU machines on HuiXingYun, Datenfab and Chenyu" \
      org.opencontainers.image.source="https://github.com/gpu-mcp/gpu-mcp" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/gpu-mcp /gpu-mcp
USER nonroot:nonroot
ENTRYPOINT ["/gpu-mcp"]
