#!/usr/bin/env bash
# CI: make the base image the Containerfile builds FROM, locally, because no container registry is reachable from
# these machines (FIELD-NOTES "Containers"). Users build with the official node:22-slim instead.
#
# The result, localhost/imgrelay-base:bookworm, stands in for node:22-slim in BOTH stages: a minimal Debian bookworm
# (debootstrap minbase + passwd for useradd) with the host's node binary in /usr/local/bin and the host's npm in
# /usr/local/lib/node_modules, where the official images keep them. Idempotent: it does nothing when the image exists.
set -euo pipefail

BASE_IMAGE="${IMGRELAY_BASE_IMAGE:-localhost/imgrelay-base:bookworm}"
PACKAGES=(podman buildah runc catatonit debootstrap slirp4netns uidmap)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "container-base: $1 needs root; run: sudo bash $0" >&2
    exit 1
  fi
}

install_packages() {
  local missing=() pkg
  # Status, not mere presence: `apt-get remove` leaves a package known to dpkg (config files), and `dpkg -s` says 0.
  for pkg in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# podman's default ulimits exceed what this machine lets a process raise (setrlimit RLIMIT_NOFILE: Operation not
# permitted), and crun fails here (cgroups in hybrid mode not supported): pin both. A drop-in, read after the main
# containers.conf (containers.conf(5)), so a machine whose podman is configured already keeps its own file; written
# only when its content would change, so a second run needs no root.
configure_podman() {
  local dir=/etc/containers/containers.conf.d nofile settings
  local file="$dir/50-imgrelay-ci.conf"
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile="$(cat /proc/sys/fs/nr_open)"
  settings="# written by imgrelay .ci/container-base.sh (FIELD-NOTES \"Containers\")
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\""
  [ -f "$file" ] && [ "$(cat "$file")" = "$settings" ] && return 0
  need_root "writing $file"
  mkdir -p "$dir"
  printf '%s\n' "$settings" >"$file"
}

# The Debian mirror apt already uses (deb822 .sources first, then one-line sources.list), so debootstrap goes
# wherever this machine is allowed to go.
debian_mirror() {
  local uri
  uri="$(grep -hs -A3 '^Types: *deb$' /etc/apt/sources.list.d/*.sources | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')"
  [ -z "$uri" ] && uri="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
  need_root "debootstrap"
  rootfs="$(mktemp -d /tmp/imgrelay-base.XXXXXX)" # global: the EXIT trap runs after this function returns
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=passwd bookworm "$rootfs" "$(debian_mirror)" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
  # The host's node needs only glibc, libstdc++ and libgcc_s, all in minbase; npm is plain JavaScript.
  install -m 0755 "$(readlink -f /usr/bin/node)" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$(dirname "$(dirname "$(readlink -f /usr/bin/npm)")")" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  tar -C "$rootfs" -c . | podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]' - "$BASE_IMAGE" >/dev/null
  echo "container-base: built $BASE_IMAGE (node $("$rootfs/usr/local/bin/node" --version))"
}

install_packages
configure_podman
if podman image exists "$BASE_IMAGE"; then
  echo "container-base: $BASE_IMAGE exists"
  exit 0
fi
build_base
