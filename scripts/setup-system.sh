#!/usr/bin/env bash
# Install the system packages hftlab needs (Debian/Ubuntu): the OS toolchain
# (nasm, gcc, binutils, make), QEMU, the capture tools (and gzip, zstd, lz4, whose
# compressed captures tests/test_capture_compressed.py reads), clang's libFuzzer and
# iproute2, DPDK 22.11 (static libraries for the linux-dpdk baseline), the UEFI boot's
# firmware and disk tools (ovmf; mtools, dosfstools, gdisk for make image's ESP and GPT;
# clang also builds BOOTX64.EFI), linuxptp (ptp4l, the master of `hftlab run --ptp`), valgrind
# (callgrind: benchmarks/tick_ir.py), and QEMU >= 8.1
# (from bookworm-backports on Debian 12: igb). Idempotent: apt-get runs only for missing packages. Run by
# `make setup`, and so by CI.
set -euo pipefail

APT_PACKAGES=(nasm qemu-system-x86 qemu-utils tcpdump tshark clang libclang-rt-14-dev
              dnsmasq-base ipxe-qemu ipxe
              iproute2 busybox-static make gcc libdpdk-dev gzip zstd lz4
              ovmf mtools dosfstools gdisk linuxptp valgrind)

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

# QEMU 8.1 or newer: the igb (82576) model is the NIC with hardware timestamps.
# Debian 12 ships 7.2; its backports (Debian's own registry, one sources entry)
# have 10.0, which becomes the project's QEMU for every run.
qemu_ok() {
    qemu-system-x86_64 -device help 2>/dev/null | grep -q '^name "igb"'
}
if ! qemu_ok; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" != bookworm ]; then
        echo "setup: QEMU on this system has no igb device (needs QEMU >= 8.1);" \
             "install a newer qemu-system-x86 (only Debian 12 is handled here)" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing QEMU from bookworm-backports (igb needs QEMU >= 8.1)"
    printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" \
        "Suites: bookworm-backports" "Components: main" \
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
        | $sudo tee /etc/apt/sources.list.d/hftlab-backports.sources >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -t bookworm-backports qemu-system-x86 qemu-utils
    qemu_ok || { echo "setup: QEMU still has no igb device" >&2; exit 1; }
fi
echo "setup: $(qemu-system-x86_64 --version | head -1)"

