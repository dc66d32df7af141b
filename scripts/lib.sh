# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Sourced, never run; the same
# strict mode as every caller, so a helper fails the same way wherever it is used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# One project name for the stack a user runs; tests use their own (see scripts/test).
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-djangostack}"
# Where the machine's CA bundle lives: handed to image builds as a build secret
# (never a layer) so pip can reach PyPI on hosts that intercept TLS.
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log()  { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m!!\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

# compose: docker compose run from the repository root, whatever the caller's cwd, for the
# release the project runs (the last one scripts/up or scripts/deploy recorded), so that a
# later `compose up` of any service never recreates the app tier with another image.
compose() {
  local release=${APP_VERSION:-}
  if [[ -z $release && -s "$ROOT/.deploy/$COMPOSE_PROJECT_NAME.history" ]]; then
    release=$(tail -n 1 "$ROOT/.deploy/$COMPOSE_PROJECT_NAME.history" | cut -d' ' -f2)
  fi
  APP_VERSION=${release:-latest} docker compose --project-directory "$ROOT" -f "$ROOT/compose.yaml" "$@"
}

# compose_bench: the same, with the benchmark's services (compose.bench.yaml) on top. Only
# scripts/bench (on a project of its own) and scripts/test (to build) use it.
compose_bench() { compose -f "$ROOT/compose.bench.yaml" "$@"; }

# The bench image is FROM djangostack/app:latest (bench/app/Dockerfile): built after it, in a
# step of its own, since Compose builds a file's images side by side.
build_bench_image() {
  APP_VERSION=latest compose_bench build bench-cgi
}

# Build secret for pip: the host bundle when there is one, else an empty file
# (the Dockerfile then uses the image's own CA store).
export_build_ca() {
  if [[ -z "${PIP_CA_BUNDLE:-}" && -s "$HOST_CA_BUNDLE" ]]; then
    export PIP_CA_BUNDLE="$HOST_CA_BUNDLE"
  fi
}

# Secrets are files under secrets/, generated once, never committed.
ensure_secrets() {
  local dir="$ROOT/secrets" name
  mkdir -p "$dir"
  chmod 700 "$dir"
  for name in django_secret_key db_password; do
    if [[ ! -s "$dir/$name" ]]; then
      log "generating secrets/$name"
      (umask 077; openssl rand -base64 48 | tr -d '\n/+=' | head -c 50 > "$dir/$name")
    fi
    # Containers run as non-root users that are not the file's owner; Compose
    # bind-mounts secret files as they are, so they must be world-readable
    # inside a directory that only root can enter.
    chmod 644 "$dir/$name"
  done
}

need_root() { [[ $EUID -eq 0 ]] || die "$1 needs root (re-run as root, or do it yourself: $2)"; }

# Debian packages for the host (the engine, debootstrap, wrk), from the host's own apt sources.
apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || die "this machine has no apt-get: install $* by hand (the scripts support Debian-like hosts)"
  need_root "installing $*" "apt-get install $*"
  if [[ $apt_updated -eq 0 ]]; then log "apt-get update"; apt-get update -qq; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The infra-tests environment (pytest, the linters, the benchmark's libraries): a venv
# with the locked versions, rebuilt when the lock file changes.
ensure_test_venv() {
  local venv="$ROOT/infra-tests/.venv" lock="$ROOT/infra-tests/requirements.lock"
  local stamp="$venv/.lock-sha256"
  if [[ ! -x "$venv/bin/pytest" || "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum < "$lock")" ]]; then
    log "installing the test environment into infra-tests/.venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    PIP_CERT="${PIP_CA_BUNDLE:-}" "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$lock"
    sha256sum < "$lock" > "$stamp"
  fi
}

# --- releases (scripts/deploy, scripts/rollback) ------------------------------------------------
# The app's release id: the last commit that changed app/, plus a hash of any uncommitted
# change to it. It changes exactly when the source the app image is built from changes.
app_version() {
  local commit dirty
  commit=$(git -C "$ROOT" log -1 --format=%h --abbrev=12 -- app 2>/dev/null || true)
  [[ -n $commit ]] || commit=nogit
  if [[ -n "$(git -C "$ROOT" status --porcelain -- app 2>/dev/null)" ]]; then
    dirty=$( { git -C "$ROOT" diff HEAD -- app; git -C "$ROOT" ls-files -z -o --exclude-standard -- app | xargs -0 -r cat; } \
             | sha256sum | cut -c1-8)
    echo "$commit-dirty.$dirty"
  else
    echo "$commit"
  fi
}

# build_release VERSION [SERVICE...]: build the images of the default stack (or only those of
# SERVICEs) from the working tree as release VERSION, then the expand/contract gate on its
# migrations. scripts/deploy (every image) and scripts/swarm deploy (the app image) share it.
build_release() {
  local version=$1; shift
  log "building images for $version${*:+ (${*})}"
  APP_VERSION=$version compose build --quiet "$@"
  log "checking migrations against the expand/contract rule"
  docker run --rm --network none -e DJANGO_SECRET_KEY=lint-only "djangostack/app:$version" \
    python manage.py lint_migrations || die "release $version has a migration the running release cannot survive; nothing was changed"
}

# Where a project's deploys are recorded, one line each: time, app version, edge configuration.
# (DEPLOY_HISTORY, when set: another file, e.g. scripts/swarm deploy's.)
deploy_history() { echo "${DEPLOY_HISTORY:-$ROOT/.deploy/$COMPOSE_PROJECT_NAME.history}"; }
# record_release VERSION EDGE_CONFIG: one line in that history.
record_release() {
  mkdir -p "$(dirname "$(deploy_history)")"
  printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$1" "$2" >> "$(deploy_history)"
}

# The running containers of a service, oldest first.
service_containers() {
  docker ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$1" --format '{{.CreatedAt}}\t{{.ID}}' | sort | cut -f2
}

# Waits until a container reports healthy; fails if it exits, turns unhealthy past its
# retries, or takes longer than $2 seconds.
wait_container_healthy() {
  local id=$1 timeout=$2 deadline=$((SECONDS + $2)) state
  while (( SECONDS < deadline )); do
    state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || echo gone/)
    case $state in
      running/healthy) return 0 ;;
      running/unhealthy|exited/*|restarting/*|dead/*|gone/*) break ;;
    esac
    sleep 1
  done
  warn "container ${id:0:12} is $state after $((timeout - (deadline - SECONDS))) s (limit ${timeout} s); its last words:"
  docker inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$id" 2>/dev/null | tail -n 3 >&2 || true
  docker logs --tail 5 "$id" >&2 2>&1 || true
  return 1
}
