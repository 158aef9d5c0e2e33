#!/usr/bin/env bash
# Builds every image in dockerfiles/ from the repository root, all tagged with one version, and
# optionally publishes them: the images a benchmark run on other machines pulls.
#
#   scripts/images.sh [--registry REGISTRY] [--version VERSION] [--push] [--pull-back]
#                     [--cargo-profile PROFILE] [--target-cpu CPU] [--only NAME,...]
#                     [--report FILE] [--dry-run]
#
# dockerfiles/NAME.dockerfile becomes REGISTRY/tfb-NAME:VERSION (tfb-database and tfb-client keep
# their names). REGISTRY defaults to "tfb" (local only), VERSION to the short git revision. Each
# image carries OCI labels: version, revision (the full commit) and source (the origin remote).
# --push publishes each image; --pull-back then removes the local copy and pulls it back from the
# registry by tag and by digest, and checks both name the pushed image. --cargo-profile builds
# the Rust binaries with another cargo profile (default release; `ci` for tests only).
# --target-cpu compiles the servers for another CPU than the building machine's (default native,
# as TFB's images; e.g. x86-64-v3 for images that run elsewhere), recorded as label
# tfb.target-cpu. --only builds some of the images (NAME as in dockerfiles/NAME.dockerfile). At
# the end a table gives each image's size, build time and digest; --report writes it as
# tab-separated lines too.
# --dry-run prints the docker commands instead of running them.
set -euo pipefail

registry=tfb
version=
push=false
pull_back=false
dry_run=false
cargo_profile=release
target_cpu=native
only=
report=
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="${2:?--registry needs a value, e.g. ghcr.io/me}"; shift 2 ;;
    --version) version="${2:?--version needs a value, e.g. 1.0.0}"; shift 2 ;;
    --push) push=true; shift ;;
    --pull-back) pull_back=true; shift ;;
    --cargo-profile) cargo_profile="${2:?--cargo-profile needs a value: release or ci}"; shift 2 ;;
    --only) only="${2:?--only needs names, e.g. axum,tfb-database}"; shift 2 ;;
    --report) report="${2:?--report needs a file}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --target-cpu) target_cpu="${2:?--target-cpu needs a value, e.g. native or x86-64-v3}"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "images.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if "$pull_back" && ! "$push"; then
  echo "images.sh: --pull-back needs --push" >&2
  exit 2
fi

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
  echo "images.sh: docker is not installed here; scripts/containers.sh sets up an engine, --dry-run shows what would run" >&2
  exit 1
fi

dockerfiles=()
for dockerfile in dockerfiles/*.dockerfile; do
  name="$(basename "$dockerfile" .dockerfile)"
  if [ -z "$only" ] || [[ ",$only," == *",$name,"* ]]; then
    dockerfiles+=("$dockerfile")
  fi
done
[ "${#dockerfiles[@]}" -gt 0 ] || { echo "images.sh: --only $only names no file in dockerfiles/" >&2; exit 2; }

rows=()
for dockerfile in "${dockerfiles[@]}"; do
  name="$(basename "$dockerfile" .dockerfile)"
  case "$name" in
    tfb-*) image="$registry/$name:$version" ;;
    *) image="$registry/tfb-$name:$version" ;;
  esac
  started="$SECONDS"
  # Only the servers' Dockerfiles take a target CPU; docker warns of a build argument not used.
  cpu_arg=()
  grep -q '^ARG TARGET_CPU' "$dockerfile" && cpu_arg=(--build-arg "TARGET_CPU=$target_cpu")
  run docker build --file "$dockerfile" --tag "$image" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source" \
    --build-arg "PROFILE=$cargo_profile" "${cpu_arg[@]}" .
  seconds=$((SECONDS - started))
  if "$dry_run"; then
    "$push" && run docker push "$image"
    continue
  fi
  size="$(docker image inspect --format '{{ .Size }}' "$image")"
  digest=-
  if "$push"; then
    docker push --quiet "$image" >/dev/null
    # The registry's digest of what was pushed: RepoDigests holds it once the push is done.
    digest="$(docker image inspect --format '{{ range .RepoDigests }}{{ println . }}{{ end }}' "$image" \
      | grep -F "${image%:*}@" | head -1)"
    digest="${digest#*@}"
    if "$pull_back"; then
      docker rmi "$image" >/dev/null
      docker pull --quiet "$image" >/dev/null
      pulled="$(docker image inspect --format '{{ range .RepoDigests }}{{ println . }}{{ end }}' "$image" \
        | grep -F "${image%:*}@" | head -1)"
      if [ "${pulled#*@}" != "$digest" ]; then
        echo "images.sh: $image pulled back as ${pulled#*@}, pushed as $digest" >&2
        exit 1
      fi
      docker pull --quiet "${image%:*}@$digest" >/dev/null
    fi
  fi
  rows+=("$(printf '%s\t%s\t%s\t%s' "$image" "$size" "$seconds" "$digest")")
done

"$dry_run" && exit 0
if [ -n "$report" ]; then
  printf 'image\tbytes\tbuild_seconds\tdigest\n' >"$report"
  printf '%s\n' "${rows[@]}" >>"$report"
fi
echo
printf '%-48s %9s %7s  %s\n' image size build digest
for row in "${rows[@]}"; do
  IFS=$'\t' read -r image size seconds digest <<<"$row"
  printf '%-48s %6s MB %6ss  %s\n' "$image" "$((size / 1000000))" "$seconds" "$digest"
done
if "$pull_back"; then
  echo "every image pushed to $registry, removed here and pulled back by tag and by digest"
fi
