#!/usr/bin/env bash
# The whole container topology in one command: an engine and a local registry
# (scripts/containers.sh), every image built, pushed, removed and pulled back by tag and digest
# (scripts/images.sh), then for each implementation the database, its server and the load client
# of deploy/compose.yaml, the client running `tfb benchmark` in client mode, and `docker compose
# down -v` after it. Stops what it started, whatever happens.
#
#   scripts/topology.sh [--implementations axum,actix,may-minihttp] [--cargo-profile release]
#                       [--load-profile quick] [--results DIR] [--version V] [--host-network]
#
# --host-network puts the three containers on the host's network (deploy/compose.multi-host.yaml,
# on free loopback ports) instead of Compose's bridge network, as the multi-host layout runs.
#
# Each implementation's results.json, summary.md and report.html land in
# DIR/<implementation>/<timestamp>/ (DIR defaults to results/topology-<version>), the images'
# sizes, build times and digests in DIR/images.tsv. The release cargo profile is what benchmarks
# use; `--cargo-profile ci` builds faster, for trying the pipeline out. Exits non-zero if a
# build, a push, a pull or a client run fails, or a type fails verification.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
implementations=
cargo_profile=release
load_profile=quick
results=
host_network=false
version="topology-$(git rev-parse --short HEAD 2>/dev/null || echo dev)"
while [ $# -gt 0 ]; do
  case "$1" in
    --implementations) implementations="${2:?a comma-separated list, e.g. axum,may-minihttp}"; shift 2 ;;
    --cargo-profile) cargo_profile="${2:?release or ci}"; shift 2 ;;
    --load-profile) load_profile="${2:?quick or tfb}"; shift 2 ;;
    --results) results="${2:?a folder}"; shift 2 ;;
    --version) version="${2:?a version}"; shift 2 ;;
    --host-network) host_network=true; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "topology.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$implementations" ]; then
  implementations="$(for config in implementations/*/benchmark_config.json; do
    folder="$(dirname "$config")"
    [ -f "dockerfiles/$(basename "$folder").dockerfile" ] && basename "$folder"
  done | paste -sd, -)"
fi
results="$(mkdir -p "${results:-results/topology-$version}" && cd "${results:-results/topology-$version}" && pwd)"

state="${TFB_CONTAINERS_DIR:-/var/tmp/tfb-containers}"
scripts/containers.sh up --state "$state"
trap 'scripts/containers.sh down --state "$state"' EXIT
scripts/containers.sh bases --state "$state"
# shellcheck disable=SC1091
. "$state/env"

scripts/images.sh --registry "$TFB_REGISTRY" --version "$version" --cargo-profile "$cargo_profile" \
  --only "$implementations,tfb-database,tfb-client" --push --pull-back --report "$results/images.tsv"

# A container cannot raise its open-file limit above the engine's own hard limit.
nofile="$(docker run --rm --entrypoint bash debian:12.12-slim -c 'ulimit -Hn')"
if [ "$nofile" != unlimited ] && [ "$nofile" -lt 200000 ]; then
  echo "topology: the engine allows containers $nofile open files, not Compose's 200000; using $nofile"
else
  nofile=200000
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

failed=()
IFS=, read -r -a names <<<"$implementations"
for name in "${names[@]}"; do
  mkdir -p "$results/$name"
  # The client runs as its image's uid 10001 and writes into this folder.
  chmod 0777 "$results/$name"
  project="tfb-topology-$name"
  compose=(docker compose -p "$project" -f deploy/compose.yaml --profile all)
  addresses=()
  if "$host_network"; then
    compose+=(-f deploy/compose.multi-host.yaml)
    addresses=(TFB_DATABASE_HOST=127.0.0.1 TFB_SERVER_HOST=127.0.0.1
      "TFB_DATABASE_PORT=$(free_port)" "TFB_SERVER_PORT=$(free_port)")
  fi
  echo "topology: $name: database, server and client from $TFB_REGISTRY (version $version)"
  if ! env TFB_VERSION="$version" TFB_IMPLEMENTATION="$name" TFB_TEST="$name" TFB_PROFILE="$load_profile" \
    TFB_RESULTS="$results/$name" TFB_USER=10001 TFB_NOFILE="$nofile" "${addresses[@]}" \
    "${compose[@]}" run --rm -T tfb-client >"$results/$name/compose.log" 2>&1; then
    echo "topology: $name: the run failed; see $results/$name/compose.log" >&2
    failed+=("$name")
  fi
  TFB_VERSION="$version" TFB_IMPLEMENTATION="$name" "${compose[@]}" down -v >/dev/null 2>&1
  summary="$(find "$results/$name" -name summary.md | sort | tail -1)"
  if [ -z "$summary" ]; then
    failed+=("$name")
    continue
  fi
  cat "$summary"
  if grep -q '| fail |' "$summary"; then
    echo "topology: $name: a type failed verification" >&2
    failed+=("$name")
  fi
done

echo
echo "topology: images: $results/images.tsv; results: $results/<implementation>/"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "topology: failed: ${failed[*]}" >&2
  exit 1
fi
