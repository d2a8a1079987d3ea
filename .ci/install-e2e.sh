#!/bin/sh
# Debian 12 packages the end-to-end tests need (tests/e2e): a real Docker engine, a static
# busybox for the base image, and debootstrap for the plugin rootfs. Run as root; idempotent.
set -eu

packages="busybox-static debootstrap debian-archive-keyring ca-certificates"
# docker.io brings dockerd, containerd, runc and tini (docker-init). Leave an engine that is
# already installed alone: docker.io conflicts with docker-ce and would replace it.
if ! command -v dockerd >/dev/null 2>&1; then
    packages="$packages docker.io"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $packages

for tool in dockerd docker containerd runc debootstrap; do
    command -v "$tool" >/dev/null || { echo "missing after install: $tool" >&2; exit 1; }
done
test -x /bin/busybox || { echo "missing /bin/busybox (busybox-static)" >&2; exit 1; }
