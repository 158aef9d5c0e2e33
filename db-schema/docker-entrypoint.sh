#!/usr/bin/env bash
# The tfb-database image's entrypoint. On the first start (an empty PGDATA) it creates a cluster
# with TFB's settings, role, database, schema and data, and sets benchmarkdbuser's password to
# POSTGRES_PASSWORD; then it runs PostgreSQL in the foreground as PID 1, so the container's stop
# signal reaches the server itself.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
: "${PGDATA:?PGDATA must name the data folder}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD, e.g. to benchmarkdbpass, the password TFB published}"
  echo "tfb-database: first start, creating the cluster in $PGDATA"
  initdb --pgdata="$PGDATA" --username=postgres --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C >/dev/null
  PGDATA="$PGDATA" "$here/apply-settings.sh"
  # Loaded through a private socket only: nobody can connect before the data and password are in.
  pg_ctl --pgdata="$PGDATA" --wait --silent \
    --options="-c listen_addresses='' -c unix_socket_directories=/tmp" start
  psql --host=/tmp --username=postgres --quiet --no-psqlrc -v ON_ERROR_STOP=1 \
    --file="$here/create-database.sql" >/dev/null
  psql --host=/tmp --username=postgres --quiet --no-psqlrc -v ON_ERROR_STOP=1 \
    -v password="$POSTGRES_PASSWORD" <<<"ALTER ROLE benchmarkdbuser PASSWORD :'password';"
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "tfb-database: TFB's schema and data loaded"
fi
exec postgres -D "$PGDATA"
