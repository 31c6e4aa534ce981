# syntax=docker/dockerfile:1
# Build: docker build -t voiceauth .
# Run:   docker run -p 8080:8080 -v voiceauth-data:/data \
#          -e VOICEAUTH_PUBLIC_URL=https://voice.example.org voiceauth
# (bound to all interfaces, voiceauth refuses to start without the public URL
# Twilio signs against; see README "Container").

# Build stage: cgo is required by mattn/go-sqlite3.
FROM golang:1.26-bookworm AS build
# The base image ships Go 1.26; the module needs Go 1.27.3 (security fixes), fetched by the go command.
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/voiceauth ./cmd/voiceauth

# Run stage: a slim Debian with the C runtime SQLite needs, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --no-create-home voiceauth \
 && mkdir -p /data /secrets && chown 10001:10001 /data /secrets && chmod 0700 /data /secrets
COPY --from=build /out/voiceauth /usr/local/bin/voiceauth
USER 10001:10001
WORKDIR /data
# The SQLite store, the secrets file and the dev OTP outbox live here.
VOLUME /data
ENV VOICEAUTH_ADDR=:8080 \
    VOICEAUTH_DATA_DIR=/data
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/voiceauth"]
CMD ["serve"]
