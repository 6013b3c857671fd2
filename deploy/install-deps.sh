#!/bin/sh
# Installs the Debian 12 packages that hyades needs to build, test and run
# (with the argument "fuzz": what make fuzz needs; "test": the test tools).
set -eu
PACKAGES="build-essential pkg-config libczmq-dev libzmq3-dev libpng-dev libgif-dev
libcriterion-dev libprimesieve-dev zlib1g-dev libmicrohttpd-dev libjansson-dev iproute2"
# "fuzz": clang and its libFuzzer runtime, for make fuzz.
[ "${1:-}" = fuzz ] && PACKAGES="clang libclang-rt-14-dev"
# "test": the tools the dashboard's tests check it with (promtool, a browser).
[ "${1:-}" = test ] && PACKAGES="prometheus chromium"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-deps: need root (or passwordless sudo) to install: $(echo $PACKAGES)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: apt-get not found; install these packages by hand: $(echo $PACKAGES)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
echo "install-deps: installed $(echo $PACKAGES)" >&2
