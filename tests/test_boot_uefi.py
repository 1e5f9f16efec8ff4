"""HFT-OS booted by UEFI, and the one disk image that boots by BIOS too.

build/hftos.img is GPT-partitioned: stage 1's code in the protective MBR,
stage 2 and the runtime in a BIOS boot partition from LBA 34, an EFI System
Partition with EFI/BOOT/BOOTX64.EFI (kernel_src/boot/uefi/), which carries
the runtime. OVMF (Debian's ovmf) on q35 under TCG starts BOOTX64.EFI; it
exits boot services and enters _start with stage 2's boot_info and page
tables. Tests: the boot table and the fault path by UEFI, the same image
by SeaBIOS on pc and q35, bad input (a runtime missing from or cut in
BOOTX64.EFI, too little RAM, a truncated image by BIOS) stopping with its
one-letter code, the RITCH run by UEFI (root: tap and netns), --boot uefi's
choices. Each test runs alone: pytest tests/test_boot_uefi.py -k fault.
Everything that boots OVMF skips where OVMF is not installed (a machine fact).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from hftlab.errors import ConfigError
from hftlab.experiment.run import RunSpec, run
from hftlab.lab.build import OsParams, build_os, read_image_config, write_image
from hftlab.lab.net import netns_list
from hftlab.lab.vm import (OVMF_CODE, OVMF_VARS, Vm, VmSpec, boot_media, choose_accel, choose_boot,
                           debug_exit_status)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")
needs_ovmf = pytest.mark.skipif(not (OVMF_CODE.is_file() and OVMF_VARS.is_file()),
                                reason=f"no OVMF at {OVMF_CODE} (apt-get install ovmf)")

EXIT_CRASHED, EXIT_BOOT_FAILED = 0x12, 0x13  # runtime/exit_codes.h
USER_NET = dict(ip_self="10.0.2.15", ip_peer="10.0.2.2", mac_peer="52:55:0a:00:02:02")
RUNTIME_MAGIC = struct.pack("<I", 0x52544648)  # HFTOS_IMAGE_MAGIC, runtime/image_header.h
OFF_FILE_END = 16  # HFTOS_IMAGE_OFF_FILE_END


@pytest.fixture(scope="module")
def image() -> Path:
    return build_os(boot="uefi")


def _vm(img: Path, workdir: Path, boot: str = "uefi", **kw) -> Vm:
    return Vm(VmSpec(**boot_media(choose_boot(boot), img), workdir=workdir,
                     accel=choose_accel("tcg"), vcpu_core=None, **kw))


def _booted_by_uefi(serial: str) -> None:
    """The console shows BOOTX64.EFI, not stage 2 or the PVH entry, and the
    runtime's E820 table came from the UEFI memory map (RAM at 1 MiB)."""
    assert "hftos uefi tsc=0x" in serial and "uefi: exiting boot services" in serial, serial[-3000:]
    assert "hftos stage2" not in serial and "hftos pvh" not in serial
    assert "boot: drive 0x0, runtime" in serial
    assert "0000000000100000-" in serial and "usable" in serial


def _runtime_copies(buf: bytes) -> list[int]:
    """Offsets of the runtime image headers in a disk image: stage 2's copy,
    then BOOTX64.EFI's (in the ESP)."""
    out, at = [], buf.find(RUNTIME_MAGIC)
    while at >= 0:
        if buf[at + 4: at + 8] == struct.pack("<I", 1):  # HFTOS_IMAGE_VERSION
            out.append(at)
        at = buf.find(RUNTIME_MAGIC, at + 1)
    return out


@needs_ovmf
def test_uefi_boot(image, tmp_path):
    """By UEFI the runtime reaches READY on an e1000, and the per-run config
    patched into both copies of the hybrid image is the one it reads."""
    copy = tmp_path / "hftos.img"
    write_image(image, copy, OsParams(**USER_NET, log_capacity=4321, max_messages=98765))
    cfg = read_image_config(copy)
    assert cfg["copies"] == 2 and cfg["log_capacity"] == 4321
    with _vm(copy, tmp_path, nic="e1000", netdev="user,id=n0") as vm:
        t = vm.wait_serial(b"HFTOS READY", 90)
        assert vm.status() == "running"
        serial = vm.serial_path.read_text(errors="replace")
    print(f"uefi: ready after {t:.2f} s")
    _booted_by_uefi(serial)
    assert "max_messages 98765 log_capacity 4321" in serial
    assert "e1000: 00:01.0 mmio 0x" in serial and "boot: phase init" in serial
    assert (tmp_path / "OVMF_VARS.fd").is_file()  # the VM's own variable store
    assert vm.proc.poll() is not None, "QEMU still running after teardown"


@needs_ovmf
def test_uefi_fault_on_purpose(image, tmp_path):
    """The fault test by UEFI: #PF at the first unmapped address (the loader
    maps [0, 4 GiB) with stage 2's tables), registers dumped on COM1 by the
    runtime's own driver, exit "crashed"."""
    copy = tmp_path / "hftos.img"
    write_image(image, copy, OsParams(**USER_NET, fault=True))
    with _vm(copy, tmp_path) as vm:
        status = vm.wait(90)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_CRASHED), serial[-2000:]
    _booted_by_uefi(serial)
    assert "vector 14" in serial and "cr2" in serial.lower()
    assert "0x100000000" in serial


@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_hybrid_image_boots_by_bios(image, tmp_path, machine):
    """The same image on SeaBIOS, i440FX (IDE) and q35 (AHCI): stage 1 from
    the protective MBR reads stage 2 and the runtime from the BIOS boot
    partition, the runtime reaches READY with the patched config."""
    copy = tmp_path / "hftos.img"
    write_image(image, copy, OsParams(**USER_NET, log_capacity=1234))
    with _vm(copy, tmp_path, "bios", nic="e1000", netdev="user,id=n0",
             extra=("-machine", machine)) as vm:
        vm.wait_serial(b"HFTOS READY", 60)
        serial = vm.serial_path.read_text(errors="replace")
    assert "hftos stage2" in serial and "hftos uefi" not in serial
    assert "log_capacity 1234" in serial


def _efi_copy_patched(image: Path, dst: Path, offset: int, data: bytes) -> Path:
    """The image with `data` written over BOOTX64.EFI's runtime at `offset`
    from its header (stage 2's copy untouched)."""
    buf = bytearray(image.read_bytes())
    copies = _runtime_copies(buf)
    assert len(copies) == 2, copies
    at = copies[1] + offset
    buf[at: at + len(data)] = data
    dst.write_bytes(buf)
    return dst


@needs_ovmf
@pytest.mark.parametrize("case, offset, data, says", [
    ("missing", 0, b"\0" * 8, "runtime header: bad magic or version"),
    ("truncated", OFF_FILE_END, struct.pack("<Q", 0x200000), "runtime truncated"),
])
def test_uefi_bad_runtime_stops_with_H(image, tmp_path, case, offset, data, says):
    """BOOTX64.EFI with no runtime (its header zeroed) or a header that asks
    for more bytes than it carries: 'H' with the reason, before
    ExitBootServices (so on ConOut: screen and serial), exit "boot failed"."""
    bad = _efi_copy_patched(image, tmp_path / "bad.img", offset, data)
    with _vm(bad, tmp_path) as vm:
        status = vm.wait(90)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_BOOT_FAILED), serial[-2000:]
    assert "hftos uefi tsc=0x" in serial and "hftos boot error: H (" in serial
    assert says in serial and "exiting boot services" not in serial


@needs_ovmf
def test_uefi_too_little_ram_stops_with_S(image, tmp_path):
    """-m 48: OVMF allocates top-down, and with 48 MiB its own allocations
    (BOOTX64.EFI's image among them) fall inside the runtime's fixed range
    [1 MiB, end of .bss ~29 MiB): the loader stops with 'S' and the reason
    before it copies anything. (With 64 MiB the range is free since the NIC
    drivers share one set of frame buffers and the runtime boots; -m 40 is
    below what OVMF itself needs to find a boot disk: it never starts
    BOOTX64.EFI.)"""
    copy = tmp_path / "hftos.img"
    write_image(image, copy, OsParams(**USER_NET))
    with _vm(copy, tmp_path, memory_mb=48) as vm:
        status = vm.wait(90)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_BOOT_FAILED), serial[-2000:]
    assert "hftos uefi tsc=0x" in serial and "hftos boot error: S (" in serial
    assert "exiting boot services" not in serial and "HFT-OS runtime" not in serial


def test_truncated_image_stops_with_R_by_bios(image, tmp_path):
    """The image cut inside the runtime (after stage 2): stage 2's disk read
    fails past the end of the disk and it stops with 'R'."""
    buf = image.read_bytes()
    stage2_runtime = _runtime_copies(buf)[0]
    cut = tmp_path / "cut.img"
    cut.write_bytes(buf[: stage2_runtime + 8 * 512])
    with _vm(cut, tmp_path, "bios") as vm:
        status = vm.wait(60)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_BOOT_FAILED), serial[-2000:]
    assert "hftos stage2" in serial and "hftos boot error: R" in serial


@needs_root
@needs_ovmf
@pytest.mark.parametrize("nic", ["e1000", "virtio", "igb"])
def test_trades_ritch_by_uefi(tmp_path, nic):
    """The bundled RITCH day over a tap, booted by UEFI on each NIC: orders
    equal the golden model's; run.json records the boot path. OVMF puts
    virtio-net's 64-bit BAR above 4 GiB (0xe000000000 here), which the
    runtime maps for the driver (arch/x86_64/paging.c)."""
    res = run(RunSpec(accel="tcg", boot="uefi", nic=nic, out=tmp_path / "run",
                      boot_timeout=120.0))
    c = res.info["counters"]
    assert res.info["spec"]["boot"] == "uefi" and res.info["spec"]["boot_requested"] == "uefi"
    assert "OVMF" in res.info["spec"]["boot_reason"]
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 0
    assert c["mold_messages"] == c["itch_messages"] == 12012
    serial = (tmp_path / "run" / "serial.log").read_text(errors="replace")
    _booted_by_uefi(serial)
    if nic == "virtio":
        assert "above 4 GiB, mapped uncached" in serial
    print(f"uefi: ready {res.info['phases_s']['ready']} s, boot phases {res.info['boot_phases_ms']} ms")
    assert res.info["network"]["netns"] not in netns_list()


def test_uefi_choices(tmp_path):
    """uefi needs OVMF's code and variable store and names the missing one;
    auto never takes uefi; the VM gets q35, OVMF read-only, its own store
    copy, S3 off and the disk first in the boot order."""
    code, store = tmp_path / "code.fd", tmp_path / "vars.fd"
    code.write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match=str(store)):
        choose_boot("uefi", ovmf_code=code, ovmf_vars=store)
    store.write_bytes(b"\0" * 16)
    b = choose_boot("uefi", ovmf_code=code, ovmf_vars=store)
    assert b.name == "uefi" and b.firmware == code and b.vars_template == store
    assert choose_boot("auto").name in ("bios", "pvh")
    media = boot_media(b, tmp_path / "hftos.img")
    assert media == {"image": tmp_path / "hftos.img", "kernel": None, "bios": None,
                     "uefi": (code, store)}
    spec = VmSpec(**media, workdir=tmp_path, accel=choose_accel("tcg"))
    cmd = " ".join(spec.command())
    assert "-machine q35" in cmd and "ICH9-LPC.disable_s3=1" in cmd
    assert f"readonly=on,file={code}" in cmd and f"file={tmp_path / 'OVMF_VARS.fd'}" in cmd
    assert "bootindex=0" in cmd and str(store) not in cmd
    if OVMF_CODE.is_file() and OVMF_VARS.is_file():
        RunSpec(boot="uefi").validate()  # accepted where OVMF is installed
