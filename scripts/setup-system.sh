#!/usr/bin/env bash
# Install the system packages hftlab needs (Debian/Ubuntu): the OS toolchain
# (nasm, gcc, binutils, make), QEMU, the capture tools (and gzip, zstd, lz4, whose
# compressed captures tests/test_capture_compressed.py reads), clang's libFuzzer and
# iproute2, DPDK 22.11 (static libraries for the linux-dpdk baseline). Idempotent: apt-get runs only for missing packages. Run by
# `make setup`, and so by CI.
set -euo pipefail

APT_PACKAGES=(nasm qemu-system-x86 qemu-utils tcpdump tshark clang libclang-rt-14-dev
              iproute2 busybox-static make gcc libdpdk-dev gzip zstd lz4)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # tshark asks whether non-root users may capture: noninteractive takes the default.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
    echo "setup: system packages present"
fi

