# syntax=docker/dockerfile:1
# Build: cgo is required by mattn/go-sqlite3.
FROM golang:1.26-bookworm AS build
# The base image ships Go 1.26; the module needs Go 1.27.3 (security fixes), fetched by the go command.
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/voiceauth ./cmd/voiceauth

# Run: a slim Debian with the C runtime SQLite needs, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/voiceauth --create-home voiceauth
COPY --from=build /out/voiceauth /usr/local/bin/voiceauth
USER voiceauth
WORKDIR /var/lib/voiceauth
ENV VOICEAUTH_ADDR=:8080 \
    VOICEAUTH_DATA_DIR=/var/lib/voiceauth/data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/voiceauth"]
CMD ["serve"]
