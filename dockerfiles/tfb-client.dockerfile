# The load client: the `tfb` runner and wrk, for client mode (`tfb benchmark --server-url ...`),
# as TFB's client machine ran it. Build from the repository root:
#   docker build -f dockerfiles/tfb-client.dockerfile -t tfb-client .
# Results go to /results: mount a folder or volume there.
# --build-arg PROFILE=ci builds with the workspace's lighter test profile instead of release.

ARG PROFILE=release

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG PROFILE
COPY --from=planner /src/recipe.json recipe.json
# The dependencies alone: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --profile "$PROFILE" --locked --recipe-path recipe.json -p tfb-runner
COPY . .
RUN cargo build --profile "$PROFILE" --locked -p tfb-runner
# Client mode needs each implementation's benchmark_config.json (the paths to load) and
# Cargo.toml (its name), not its sources.
RUN for config in implementations/*/benchmark_config.json; do \
        folder="/opt/tfb/$(dirname "$config")"; \
        mkdir -p "$folder" && cp "$config" "$(dirname "$config")/Cargo.toml" "$folder/"; \
    done

FROM debian:12.12-slim
ARG PROFILE
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="tfb-client" \
      org.opencontainers.image.description="The TechEmpower-style load client: the tfb runner in client mode, and wrk" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
RUN apt-get update \
    && apt-get install -y --no-install-recommends wrk=4.1.0-3+b2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tfb \
    && mkdir /results && chown 10001 /results
COPY --from=builder /src/target/${PROFILE}/tfb /usr/local/bin/tfb
COPY --from=builder /opt/tfb /opt/tfb
ENV TFB_ROOT=/opt/tfb
WORKDIR /results
USER 10001
ENTRYPOINT ["/usr/local/bin/tfb"]
CMD ["list"]
