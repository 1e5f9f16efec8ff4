"""HFT-OS booted by PVH: qboot and QEMU's -kernel load the runtime ELF
(build/hftos.elf) and enter its XEN_ELFNOTE_PHYS32_ENTRY entry
(kernel_src/arch/x86_64/pvh_entry.asm), no disk, no SeaBIOS, no stage 1/2.

The boot table, the fault path and the RITCH run of tests/test_os.py, by
PVH; a PVH start with too little RAM for the runtime stops with its
one-letter code; --boot's choices. Each test can run alone:
pytest tests/test_boot_pvh.py -k fault. The runs that need a tap and a
network namespace skip without root; everything skips where qboot is not
installed (the machine fact PVH needs).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hftlab.errors import ConfigError
from hftlab.experiment.run import RunSpec, run
from hftlab.lab.build import OsParams, build_os, read_image_config, write_image
from hftlab.lab.net import netns_list
from hftlab.lab.vm import QBOOT, Vm, VmSpec, boot_media, choose_accel, choose_boot, debug_exit_status

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")
needs_qboot = pytest.mark.skipif(not QBOOT.is_file(), reason=f"no qboot at {QBOOT} (qemu-system-data)")

EXIT_OK, EXIT_CRASHED, EXIT_BOOT_FAILED = 0x10, 0x12, 0x13  # runtime/exit_codes.h
USER_NET = dict(ip_self="10.0.2.15", ip_peer="10.0.2.2", mac_peer="52:55:0a:00:02:02")


@pytest.fixture(scope="module")
def elf() -> Path:
    return build_os(boot="pvh")


def _pvh_vm(elf_copy: Path, workdir: Path, accel: str = "tcg", **kw) -> Vm:
    return Vm(VmSpec(**boot_media(choose_boot("pvh"), elf_copy), workdir=workdir,
                     accel=choose_accel(accel), vcpu_core=None, **kw))


def _booted_by_pvh(serial: str) -> None:
    """The console shows the PVH entry, not stage 2, and the runtime's E820
    table came from hvm_start_info's memory map (RAM at 1 MiB)."""
    assert "hftos pvh tsc=0x" in serial and "pvh: entering long mode" in serial, serial[:2000]
    assert "hftos stage2" not in serial
    assert "boot: drive 0x0, runtime" in serial
    assert "0000000000100000-" in serial and "usable" in serial


BOOTS = {"tcg": "tcg", "tcg-icount": "tcg-icount"}  # name: accel (tests/test_os.py's table)


@needs_qboot
@pytest.mark.parametrize("name", BOOTS)
def test_pvh_boot(elf, tmp_path, name):
    """Booted by PVH the runtime reaches READY on an e1000, and the per-run
    config block patched into the ELF copy is the one it reads."""
    copy = tmp_path / "hftos.elf"
    write_image(elf, copy, OsParams(**USER_NET, log_capacity=4321, max_messages=98765))
    assert read_image_config(copy)["log_capacity"] == 4321
    with _pvh_vm(copy, tmp_path, BOOTS[name], nic="e1000", netdev="user,id=n0") as vm:
        t = vm.wait_serial(b"HFTOS READY", 60)
        assert vm.status() == "running"
        serial = vm.serial_path.read_text(errors="replace")
    print(f"pvh {name}: ready after {t:.2f} s")
    _booted_by_pvh(serial)
    assert "max_messages 98765 log_capacity 4321" in serial
    assert "tsc_hz=" in serial and "boot: phase init" in serial
    assert vm.proc.poll() is not None, "QEMU still running after teardown"


@needs_qboot
def test_pvh_fault_on_purpose(elf, tmp_path):
    """The fault test by PVH: #PF at the first unmapped address (the PVH
    entry maps [0, 4 GiB) as stage 2 does), registers dumped, exit "crashed"."""
    copy = tmp_path / "hftos.elf"
    write_image(elf, copy, OsParams(**USER_NET, fault=True))
    with _pvh_vm(copy, tmp_path) as vm:
        status = vm.wait(60)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_CRASHED), serial[-2000:]
    _booted_by_pvh(serial)
    assert "vector 14" in serial and "cr2" in serial.lower()
    assert "0x100000000" in serial  # the faulting address


@needs_qboot
def test_pvh_too_little_ram_stops_with_its_code(elf, tmp_path):
    """-m 16: the memory map has no RAM entry holding the runtime and its
    .bss (about 40 MiB), so the PVH entry stops before long mode with "S"
    and exits "boot failed"; the runtime never starts."""
    copy = tmp_path / "hftos.elf"
    write_image(elf, copy, OsParams(**USER_NET))
    with _pvh_vm(copy, tmp_path, memory_mb=16) as vm:
        status = vm.wait(60)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_BOOT_FAILED), serial[-2000:]
    assert "hftos pvh" in serial and "hftos boot error: S" in serial
    assert "entering long mode" not in serial and "HFT-OS runtime" not in serial


@needs_root
@pytest.mark.parametrize("boot", ["bios", pytest.param("pvh", marks=needs_qboot)])
def test_trades_ritch(tmp_path, boot):
    """The bundled RITCH day over a tap, by each boot path side by side (the
    default, auto, is PVH where qboot is: tests/test_os.py's RITCH run takes
    it, so BIOS gets its own): orders equal the golden model's."""
    res = run(RunSpec(accel="tcg", boot=boot, out=tmp_path / "run"))
    c = res.info["counters"]
    assert res.info["spec"]["boot"] == boot and res.info["spec"]["boot_requested"] == boot
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 0
    assert c["mold_messages"] == c["itch_messages"] == 12012
    assert c["mold_gaps"] == c["mold_duplicates"] == 0
    serial = (tmp_path / "run" / "serial.log").read_text(errors="replace")
    if boot == "pvh":
        assert (tmp_path / "run" / "hftos.elf").is_file() and not (tmp_path / "run" / "hftos.img").exists()
        _booted_by_pvh(serial)
    else:
        assert (tmp_path / "run" / "hftos.img").is_file() and not (tmp_path / "run" / "hftos.elf").exists()
        assert "hftos stage2" in serial and "hftos pvh" not in serial
    print(f"{boot}: ready {res.info['phases_s']['ready']} s, boot phases {res.info['boot_phases_ms']} ms")
    assert res.info["network"]["netns"] not in netns_list()


def test_boot_choices(tmp_path):
    """auto takes PVH exactly when qboot is there (never uefi:
    tests/test_boot_uefi.py has its choices); pvh without qboot names the
    file; baselines take auto only."""
    missing = tmp_path / "no-qboot.rom"
    fake = tmp_path / "qboot.rom"
    fake.write_bytes(b"\0" * 16)
    assert choose_boot("auto", qboot=fake).name == "pvh"
    assert choose_boot("auto", qboot=missing).name == "bios"
    assert choose_boot("bios", qboot=fake).name == "bios"
    assert choose_boot("pvh", qboot=fake).firmware == fake
    assert choose_boot("auto", qboot=missing).name != "uefi"
    with pytest.raises(ConfigError, match=str(missing)):
        choose_boot("pvh", qboot=missing)
    with pytest.raises(ConfigError, match="choose one of"):
        choose_boot("grub")
    with pytest.raises(ConfigError, match="leave it at auto"):
        RunSpec(sut="linux-socket", boot="pvh").validate()
    pvh = boot_media(choose_boot("pvh", qboot=fake), tmp_path / "hftos.elf")
    assert pvh == {"image": None, "kernel": tmp_path / "hftos.elf", "bios": fake}
    assert boot_media(choose_boot("bios"), tmp_path / "x.img")["image"] == tmp_path / "x.img"
