# The actix reference implementation. Build from the repository root:
#   docker build -f dockerfiles/actix.dockerfile -t tfb-actix .
# Build it on the machine that will serve the benchmark: the binary targets that CPU.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
ENV RUSTFLAGS="-C target-cpu=native"
COPY Cargo.toml Cargo.lock ./
# Every workspace member must be present for cargo to load the workspace.
COPY conformance conformance
COPY db-schema db-schema
COPY harness harness
COPY implementations implementations
COPY runner runner
COPY tests tests
RUN cargo build --release --locked -p tfb-actix

FROM debian:12.12-slim
LABEL org.opencontainers.image.title="tfb-actix" \
      org.opencontainers.image.description="The actix reference implementation of the TechEmpower test types"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tfb
COPY --from=builder /src/target/release/tfb-actix /usr/local/bin/tfb-actix
USER 10001
ENV DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@tfb-database/hello_world \
    PORT=8080
EXPOSE 8080
CMD ["/usr/local/bin/tfb-actix"]
