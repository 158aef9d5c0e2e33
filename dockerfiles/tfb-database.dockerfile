# PostgreSQL with TFB's schema, data and settings, like TFB's own database image, built on Debian
# and its PostgreSQL package. Build from the repository root:
#   docker build -f dockerfiles/tfb-database.dockerfile -t tfb-database .
# Set POSTGRES_PASSWORD when starting it (Compose and the Kubernetes manifests do): no password
# is baked in. TFB's published one, benchmarkdbpass, is what every implementation's default
# DATABASE_URL expects. The first start loads the data (db-schema/docker-entrypoint.sh).
FROM debian:12.12-slim

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="tfb-database" \
      org.opencontainers.image.description="PostgreSQL loaded with the TechEmpower World/Fortune schema" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

# The postgres user gets uid and gid 999, as in the official image, before the package would
# pick others; the package must not create a cluster of its own.
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/tfb.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15=15.20-0+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R 999:999 /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data

COPY db-schema/postgresql.conf /usr/local/share/tfb-database/tfb-postgresql.conf
COPY db-schema/apply-settings.sh db-schema/create-database.sql db-schema/create-postgres.sql \
     db-schema/docker-entrypoint.sh /usr/local/share/tfb-database/

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
USER 999:999
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD ["pg_isready", "-U", "benchmarkdbuser", "-d", "hello_world"]
ENTRYPOINT ["/usr/local/share/tfb-database/docker-entrypoint.sh"]
