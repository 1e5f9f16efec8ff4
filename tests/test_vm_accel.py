"""Accelerator choice: auto refuses a PVM-style /dev/kvm and explains why."""
from __future__ import annotations

import os

import pytest

from hftlab.errors import ConfigError
from hftlab.vm import choose_accel, cpu_flags

VMX = "processor\t: 0\nflags\t\t: fpu vme sse2 vmx lm\n"
NOVMX = "processor\t: 0\nflags\t\t: fpu vme sse2 lm hypervisor\n"


@pytest.fixture
def fake_kvm(tmp_path):
    dev = tmp_path / "kvm"
    dev.write_bytes(b"")  # opens read-write, like a working /dev/kvm
    pvm = tmp_path / "kvm_pvm"
    pvm.mkdir()
    return dev, pvm


def test_auto_refuses_pvm_style_kvm(fake_kvm):
    dev, pvm = fake_kvm
    a = choose_accel("auto", dev=dev, cpuinfo=NOVMX, pvm_marker=pvm)
    assert a.name == "tcg" and "vmx nor svm" in a.reason and "PVM" in a.reason
    assert a.args == ("-accel", "tcg") and a.cpu == "max"
    with pytest.raises(ConfigError, match="not usable"):
        choose_accel("kvm", dev=dev, cpuinfo=NOVMX, pvm_marker=pvm)


def test_auto_takes_hardware_kvm(fake_kvm):
    dev, _ = fake_kvm
    a = choose_accel("auto", dev=dev, cpuinfo=VMX, pvm_marker="/nonexistent")
    assert a.name == "kvm" and a.cpu == "host,-arch-capabilities"


def test_missing_dev_and_explicit_choices(tmp_path):
    a = choose_accel("auto", dev=tmp_path / "none", cpuinfo=VMX)
    assert a.name == "tcg" and "does not exist" in a.reason
    assert choose_accel("tcg").args == ("-accel", "tcg")
    ic = choose_accel("tcg-icount")
    assert "-icount" in ic.args and "shift=0,sleep=off" in ic.args
    with pytest.raises(ConfigError):
        choose_accel("xen")


def test_this_machine(capsys):
    """Whatever this host is, auto's decision and reason are printed."""
    a = choose_accel("auto")
    print(f"auto on this host: {a.name}: {a.reason}")
    flags = cpu_flags()
    if a.name == "kvm":
        assert flags & {"vmx", "svm"}
    elif os.path.exists("/dev/kvm") and not flags & {"vmx", "svm"}:
        assert "vmx nor svm" in a.reason
