# syntax=docker/dockerfile:1
#
# The wre engine image: one static `wre` binary on distroless/static, running
# as the image's nonroot user (65532). No shell, no libc, no package manager.
#
#   docker build -t ghcr.io/wre-dev/wre:dev .
#
# The binary is built exactly as `make image-binary` builds bin/wre
# (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"); test/deploy checks that such a
# binary is static (TestBinaryIsStatic with WRE_BINARY=bin/wre). See
# docs/operations.md#image.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so source changes do not re-download them.
COPY go.mod go.sum ./
COPY guest-sdk/go.mod guest-sdk/go.sum guest-sdk/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/wre ./cmd/wre

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/wre /usr/local/bin/wre
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wre"]
CMD ["run"]
