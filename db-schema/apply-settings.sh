#!/usr/bin/env bash
# Appends TFB's settings to a new cluster's postgresql.conf, as TFB's config.sh does: the
# official postgres image runs this from /docker-entrypoint-initdb.d/ before its first real start.
set -euo pipefail
settings_dir="$(dirname "${BASH_SOURCE[0]}")"
{
  printf '\n# db-schema/postgresql.conf\n'
  cat "${settings_dir}/tfb-postgresql.conf"
  major="$(postgres --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')"
  if [ "${major}" -ge 18 ]; then
    io_workers=$(( ($(nproc) + 3) / 4 ))
    [ "${io_workers}" -lt 32 ] || io_workers=32
    printf 'io_workers = %s\n' "${io_workers}"
  fi
} >> "${PGDATA}/postgresql.conf"
