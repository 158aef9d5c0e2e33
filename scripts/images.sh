#!/usr/bin/env bash
# Builds every image in dockerfiles/ from the repository root, all tagged with one version, and
# optionally pushes them: the images a benchmark run on other machines pulls.
#
#   scripts/images.sh [--registry REGISTRY] [--version VERSION] [--push] [--dry-run]
#
# dockerfiles/NAME.dockerfile becomes REGISTRY/tfb-NAME:VERSION (tfb-database and tfb-client keep
# their names). REGISTRY defaults to "tfb" (local only), VERSION to the short git revision. Each
# image carries OCI labels: version, revision (the full commit) and source (the origin remote).
# --dry-run prints the docker commands instead of running them.
set -euo pipefail

registry=tfb
version=
push=false
dry_run=false
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="${2:?--registry needs a value, e.g. ghcr.io/me}"; shift 2 ;;
    --version) version="${2:?--version needs a value, e.g. 1.0.0}"; shift 2 ;;
    --push) push=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "images.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
version="${version:-$(git rev-parse --short HEAD 2>/dev/null || echo dev)}"
source="$(git config --get remote.origin.url 2>/dev/null || echo unknown)"
registry="${registry%/}"

run() {
  if "$dry_run"; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if ! "$dry_run" && ! command -v docker >/dev/null; then
  echo "images.sh: docker is not installed here; --dry-run shows what would run" >&2
  exit 1
fi

for dockerfile in dockerfiles/*.dockerfile; do
  name="$(basename "$dockerfile" .dockerfile)"
  case "$name" in
    tfb-*) image="$registry/$name:$version" ;;
    *) image="$registry/tfb-$name:$version" ;;
  esac
  run docker build --file "$dockerfile" --tag "$image" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source" .
  if "$push"; then
    run docker push "$image"
  fi
done
