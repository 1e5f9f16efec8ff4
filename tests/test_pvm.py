"""HFT-OS under KVM's PVM flavour (issue 15): `--accel auto` picks
kvm-pvm for HFT-OS booted by PVH where kvm_pvm is loaded (no vmx/svm),
and the run trades golden-equal, with its loop at CPL3 running natively
(kernel_src/arch/x86_64/ring.h).

Skips only where /dev/kvm with kvm_pvm or vmx/svm is absent (a machine
fact); the trading runs also need root (tap, netns) and qboot (PVH).
"""
from __future__ import annotations

import os

import pytest

from hftlab.experiment.run import RunSpec, run
from hftlab.lab.build import OsParams, build_os, write_image
from hftlab.lab.vm import QBOOT, Vm, VmSpec, boot_media, choose_accel, choose_boot, debug_exit_status
from hftlab.model import synth

KVM = choose_accel("auto", pvm_image=True)
needs_kvm = pytest.mark.skipif(KVM.name not in ("kvm", "kvm-pvm"),
                               reason=f"no usable KVM here: {KVM.reason}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tap and netns need root")
needs_qboot = pytest.mark.skipif(not QBOOT.is_file(), reason=f"no qboot at {QBOOT} (qemu-system-data)")
EXIT_CRASHED = 0x12  # runtime/exit_codes.h
USER_NET = dict(ip_self="10.0.2.15", ip_peer="10.0.2.2", mac_peer="52:55:0a:00:02:02")


def _native_loop(serial: str) -> None:
    """The console names the KVM clock the TSC rate came from (under KVM,
    CPUID 15h/16h are absent) and the PIT cross-check beside it."""
    line = next(l for l in serial.splitlines() if l.startswith("tsc: "))
    assert "from kvmclock" in line and "PIT check" in line, line


@needs_kvm
@needs_root
@needs_qboot
def test_pvm_trades_ritch(tmp_path):
    """auto on this host: KVM (kvm-pvm on a PVM host), RITCH golden-equal."""
    res = run(RunSpec(accel="auto", out=tmp_path / "run"))
    s, c = res.info["spec"], res.info["counters"]
    assert s["accel"] == KVM.name and s["boot"] == "pvh", s
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 0
    assert c["mold_messages"] == c["itch_messages"] == 12012 and c["mold_gaps"] == 0
    _native_loop((tmp_path / "run" / "serial.log").read_text(errors="replace"))


@needs_kvm
@needs_root
@needs_qboot
def test_pvm_synthetic_100k(tmp_path):
    """A 100k-message synthetic feed under auto (kvm-pvm here): golden-equal."""
    feed = tmp_path / "feed.itch"
    synth.generate(feed, 100_000, seed=3)
    res = run(RunSpec(accel="auto", dataset=feed, rate=50_000, out=tmp_path / "run"))
    c = res.info["counters"]
    assert res.info["spec"]["accel"] == KVM.name
    assert res.info["orders"]["equal"] and res.info["orders"]["sut"] > 100
    assert c["mold_messages"] == c["itch_messages"] == 100_000 and c["mold_gaps"] == 0


@needs_kvm
@needs_qboot
def test_pvm_fault_at_cpl3_is_dumped(tmp_path):
    """The fault test writes to an unmapped address at CPL3 (where the
    loop runs): under KVM the #PF still lands in the ring-0 handler, which
    dumps the registers (CS with RPL 3) and exits "crashed"."""
    copy = tmp_path / "hftos.elf"
    write_image(build_os(boot="pvh"), copy, OsParams(**USER_NET, fault=True))
    vm = Vm(VmSpec(**boot_media(choose_boot("pvh"), copy), workdir=tmp_path, accel=KVM, vcpu_core=None))
    with vm:
        status = vm.wait(60)
        serial = vm.serial_path.read_text(errors="replace")
    assert status == debug_exit_status(EXIT_CRASHED), serial[-2000:]
    assert "at CPL3" in serial and "vector 14" in serial and "0x100000000" in serial
    assert "(CPL3)" in serial and "cause: page not present, write, user" in serial
    _native_loop(serial)
