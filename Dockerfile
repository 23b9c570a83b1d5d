# ansinh service image. Build: docker build -t ansinh .
#
# Stage 1 builds a static binary (no cgo: Pebble then uses its pure-Go zstd,
# which reads and writes the same format). Stage 2 is a slim Debian with the
# binary, CA certificates for TLS to EventStoreDB, and curl for the health
# check; it runs as an unprivileged user.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that code changes do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ansinh ./cmd/ansinh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ansinh --create-home ansinh
COPY --from=build /out/ansinh /usr/local/bin/ansinh
USER ansinh
WORKDIR /var/lib/ansinh
# --data holds the embedded store, or with --store esdb://... only this
# replica's projections and checkpoints.
ENV ANSINH_ADDR=:8080 \
    ANSINH_DATA=/var/lib/ansinh
VOLUME ["/var/lib/ansinh"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["ansinh"]
CMD ["serve"]
