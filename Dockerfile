# syntax=docker/dockerfile:1
# nyro-gw container image: a static-enough release binary on distroless/cc
# (glibc, CA certificates, no shell), running as a numeric non-root user
# with nothing to write: works with readOnlyRootFilesystem.
#
#   docker build -t nyro-gw .
#   docker run --rm -p 8080:8080 -e GATEWAY_JWT_SECRET=... nyro-gw
#
# CI lints this file with hadolint; it does not build the image (no
# registry is reachable from CI). README: Operations.

# The builder's Debian release matches the runtime's (glibc 2.36).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# aws-lc-rs (rustls' crypto) and jemalloc build C code: a compiler, cmake, perl, make.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake perl clang make \
 && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
# jemalloc's start-up options (README "Performance").
COPY .cargo ./.cargo
COPY src ./src
COPY examples ./examples
COPY gateway.toml gateway.schema.json ./
# Optimized with the committed profile of the request path under load
# (bench/pgo.sh; README "Performance"): about 15 % less CPU per request.
COPY bench/nyro-gw.profdata ./bench/
ENV RUSTFLAGS=-Cprofile-use=/src/bench/nyro-gw.profdata
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin nyro-gw \
 && cp target/release/nyro-gw /nyro-gw

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /nyro-gw /usr/local/bin/nyro-gw
# The shipped config; Kubernetes mounts its ConfigMap over /etc/nyro.
COPY gateway.toml /etc/nyro/gateway.toml
# distroless' "nonroot" user, by number so runAsNonRoot can verify it.
USER 65532:65532
# 8080 public (GATEWAY_LISTEN), 9901 admin (GATEWAY_ADMIN_LISTEN; loopback
# unless set, e.g. 0.0.0.0:9901 for a Prometheus scraper).
EXPOSE 8080 9901
ENV GATEWAY_LISTEN=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/nyro-gw"]
CMD ["serve", "--config", "/etc/nyro/gateway.toml"]
