# PostgreSQL with TFB's schema, data and settings, like TFB's own database image.
# Build from the repository root:
#   docker build -f dockerfiles/tfb-database.dockerfile -t tfb-database .
# Set POSTGRES_PASSWORD when starting it (Compose and the Kubernetes manifests do): no password
# is baked in. TFB's published one, benchmarkdbpass, is what every implementation's default
# DATABASE_URL expects.
FROM postgres:18.1-trixie

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="tfb-database" \
      org.opencontainers.image.description="PostgreSQL loaded with the TechEmpower World/Fortune schema" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

# The official image creates this superuser and database on first start, then runs the scripts
# below in name order.
ENV POSTGRES_USER=benchmarkdbuser \
    POSTGRES_DB=hello_world

COPY db-schema/postgresql.conf /docker-entrypoint-initdb.d/tfb-postgresql.conf
COPY db-schema/apply-settings.sh /docker-entrypoint-initdb.d/10-apply-settings.sh
COPY db-schema/create-postgres.sql /docker-entrypoint-initdb.d/20-create-postgres.sql

# The official image's entrypoint supports starting as its postgres user (uid and gid 999): it
# then initialises and serves without any root step.
USER 999:999
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD ["pg_isready", "-U", "benchmarkdbuser", "-d", "hello_world"]
