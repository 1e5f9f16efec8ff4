"""Accelerator choice: auto refuses a PVM-style /dev/kvm and explains why."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hftlab.errors import ConfigError
from hftlab.lab.vm import choose_accel, cpu_flags

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


def test_this_machine():
    """Whatever this host is, auto's decision is the one its facts give
    (/dev/kvm opens read-write and the CPU shows vmx or svm -> KVM, else TCG),
    with the reason that names the missing fact."""
    dev = Path("/dev/kvm")
    flags = cpu_flags()
    hw = sorted(flags & {"vmx", "svm"})
    opens = False
    if dev.exists():
        try:
            os.close(os.open(dev, os.O_RDWR))
            opens = True
        except OSError:
            pass
    a = choose_accel("auto")
    print(f"auto on this host: {a.name}: {a.reason} (/dev/kvm opens={opens}, cpu flags {hw})")
    if opens and hw:
        assert (a.name, a.args, a.cpu) == ("kvm", ("-accel", "kvm"), "host,-arch-capabilities")
        assert hw[0] in a.reason
        return
    assert (a.name, a.args, a.cpu) == ("tcg", ("-accel", "tcg"), "max")
    assert a.reason.startswith("auto chose TCG: ")
    if not dev.exists():
        assert "does not exist" in a.reason
    elif not opens:
        assert "cannot be opened" in a.reason
    else:
        assert "vmx nor svm" in a.reason
        assert ("PVM" in a.reason) == Path("/sys/module/kvm_pvm").exists()
    with pytest.raises(ConfigError, match="not usable"):  # and an explicit kvm is refused
        choose_accel("kvm")


def test_pvm_kvm_only_for_a_cpl3_image(fake_kvm):
    """KVM's PVM flavour is taken (as kvm-pvm, KVM's CPU model) for an image
    whose loop runs at CPL3, by auto and by an explicit kvm; not without."""
    dev, pvm = fake_kvm
    a = choose_accel("auto", dev=dev, cpuinfo=NOVMX, pvm_marker=pvm, pvm_image=True)
    assert (a.name, a.args, a.cpu) == ("kvm-pvm", ("-accel", "kvm"), "host,-arch-capabilities")
    assert a.reason.startswith("auto chose KVM-PVM: ") and "CPL3" in a.reason
    k = choose_accel("kvm", dev=dev, cpuinfo=NOVMX, pvm_marker=pvm, pvm_image=True)
    assert k.name == "kvm-pvm" and k.reason.startswith(str(dev))
    # no kvm_pvm module and no vmx/svm: nothing to use, image or not
    t = choose_accel("auto", dev=dev, cpuinfo=NOVMX, pvm_marker=pvm / "absent", pvm_image=True)
    assert t.name == "tcg" and "absent" in t.reason
    # hardware KVM is KVM whatever the image
    assert choose_accel("auto", dev=dev, cpuinfo=VMX, pvm_marker=pvm, pvm_image=True).name == "kvm"


def test_image_features_of_the_built_elf():
    """The runtime ELF says its loop runs at CPL3 (runtime/image_header.h)."""
    from hftlab.lab.build import build_os
    from hftlab.lab.vm import IMAGE_F_CPL3_LOOP, image_features

    elf = build_os(boot="pvh")
    assert image_features(elf) & IMAGE_F_CPL3_LOOP
    img = build_os(boot="bios")
    assert image_features(img) & IMAGE_F_CPL3_LOOP
