#!/bin/sh
# install-deps.sh: installs every build, test and tool dependency of Chorus
# from Debian 12's packages. Non-interactive and idempotent: packages that
# are already present are left alone, so a second run is a quick no-op.
set -eu

PKGS="
  build-essential cmake pkg-config git ca-certificates python3
  libuv1-dev libopus-dev libspeexdsp-dev libsodium-dev libmicrohttpd-dev
  libjansson-dev libsqlite3-dev libcriterion-dev uthash-dev
  curl libcurl4-openssl-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  clang libclang-rt-dev
  coturn iproute2 iptables conntrack
"
# coturn: turnutils_stunclient / turnutils_natdiscovery, the standard STUN
# clients tests/integration/stun/ runs against chorus-bridge; iproute2,
# iptables and conntrack build that test's network-namespace NAT lab.
# Installing coturn does not start turnserver where /usr/sbin/policy-rc.d
# forbids it (containers, CI images); on a host with a live init it may.

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
