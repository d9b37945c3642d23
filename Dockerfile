# oauthd in a container: a static binary on distroless, as a non-root user.
#
#   docker build -t oauthd .
#   docker run -d -p 127.0.0.1:8000:8000 -v oauthd-data:/data --stop-timeout 30 oauthd --demo --issuer http://localhost:8000
#
# The image's configuration file, /etc/oauthd/oauthd.yaml (deploy/container.yaml),
# listens on :8000, serves /metrics, /healthz (liveness) and /readyz
# (readiness) on :9090, and keeps the SQLite database in the /data volume.
# It has no issuer, which serve requires: give the URL clients use with
# OAUTHD_ISSUER or --issuer after the image name (--issuer
# https://auth.example.com). Mount your own file over it, or override keys
# with OAUTHD_* variables or flags. The CLI uses the same file: docker exec
# CONTAINER /oauthd client list. Give docker stop more than
# shutdown_timeout (20s): --stop-timeout 30.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/oauthd ./cmd/oauthd \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oauthd /oauthd
# The data directory, owned by the nonroot user (65532) so SQLite can create its files.
COPY --from=build --chown=65532:65532 /out/data /data
COPY deploy/container.yaml /etc/oauthd/oauthd.yaml
USER 65532:65532
WORKDIR /data
ENV OAUTHD_CONFIG=/etc/oauthd/oauthd.yaml
EXPOSE 8000 9090
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/oauthd", "serve"]
