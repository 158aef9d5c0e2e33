# The ntex reference implementation. Build from the repository root:
#   docker build -f dockerfiles/ntex.dockerfile -t tfb-ntex .
# scripts/images.sh builds every image with one version and can push them to a registry.
# Build it on the machine that will serve the benchmark: the binary targets that CPU
# (--build-arg TARGET_CPU=x86-64-v3, or any name rustc knows, builds one for other machines).
# --build-arg PROFILE=ci builds with the workspace's lighter test profile instead of release.

ARG PROFILE=release
ARG TARGET_CPU=native

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG PROFILE
ARG TARGET_CPU
ENV RUSTFLAGS="-C target-cpu=${TARGET_CPU}"
COPY --from=planner /src/recipe.json recipe.json
# The dependencies alone: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --profile "$PROFILE" --locked --recipe-path recipe.json -p tfb-ntex
COPY . .
RUN cargo build --profile "$PROFILE" --locked -p tfb-ntex

FROM debian:12.12-slim
ARG PROFILE
ARG TARGET_CPU
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="tfb-ntex" \
      org.opencontainers.image.description="The ntex reference implementation of the TechEmpower test types" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      tfb.target-cpu="${TARGET_CPU}"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tfb
COPY --from=builder /src/target/${PROFILE}/tfb-ntex /usr/local/bin/tfb-ntex
USER 10001
# The password is TFB's published one, part of the default URL of every implementation; set
# DATABASE_URL at run time to use other credentials.
ENV DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@tfb-database/hello_world \
    PORT=8080
EXPOSE 8080
# bash's /dev/tcp needs no extra package; /plaintext does not touch the database.
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT} && printf 'GET /plaintext HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'"]
CMD ["/usr/local/bin/tfb-ntex"]
