"""HFT-OS on a USB stick, by PXE, and on a machine reached only through a NIC
and a serial console (issue 14, items 3-5).

* `hftlab deploy usb` on loop devices: written, synced, read back; refused
  when not removable (a loop device's sysfs says removable 0 and it sits on
  no USB bus: the real check, not a stand-in), mounted, or too small; asks
  unless --yes; a read-back that differs, a device that fails mid-write and
  an interruption each leave the device without a boot sector and say so.
* `hftlab deploy pxe`: the tree, the padded image, the script.
* Boots that trade RITCH equal to the golden model: QEMU's usb-storage
  under SeaBIOS; PXE through the NIC's iPXE ROM from the dnsmasq and HTTP
  server hftlab starts in the run's namespace; and `run --target hw` with a
  QEMU machine standing in for the hardware: its NIC a tap hftlab knows only
  as IFACE, its serial a pty hftlab knows only as TTY, started paused and
  powered on by --power-cmd, booted from the stick hftlab wrote (a loop
  device) or by PXE from hftlab's dnsmasq on IFACE.

Root-only tests skip without root (loop devices, mounts, taps, namespaces).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hftlab.errors import ConfigError
from hftlab.experiment.run import RunSpec, run
from hftlab.lab import deploy, hw
from hftlab.lab.build import OsParams, build_os, read_image_config, write_image
from hftlab.lab.net import netns_list
from hftlab.lab.vm import GUEST_MAC, debug_exit_status

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices, mounts, taps and netns need root")

ROOT = Path(__file__).resolve().parents[1]
EXIT_OK = 0x10


def _cli(*args: str, stdin: str = "", netns: str | None = None, timeout: float = 240):
    cmd = [sys.executable, "-m", "hftlab.cli", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """The built disk image with a config block of its own, padded to 3 MiB so
    that it spans more than one write and read-back chunk (1 MiB)."""
    out = tmp_path_factory.mktemp("img") / "hftos.img"
    write_image(build_os(boot="bios"), out,
                OsParams(ip_self="10.9.0.2", ip_peer="10.9.0.1", mac_peer="02:00:00:00:00:01"))
    if out.stat().st_size < 3 << 20:
        os.truncate(out, 3 << 20)
    return out


class Loop:
    """A loop device over a file of `size` bytes filled with a marker byte."""

    def __init__(self, backing: Path, size: int, fill: bytes = b"\xa5") -> None:
        backing.write_bytes(fill * size)
        self.backing = backing
        self.dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                                  text=True, check=True).stdout.strip()

    def read(self, n: int, offset: int = 0) -> bytes:
        with open(self.backing, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)

    def close(self) -> None:
        subprocess.run(["losetup", "-d", self.dev], check=False)


@pytest.fixture
def loop(tmp_path):
    made: list[Loop] = []

    def make(size: int = 8 << 20, name: str = "stick.bin", where: Path | None = None) -> Loop:
        lp = Loop((where or tmp_path) / name, size)
        made.append(lp)
        return lp

    yield make
    for lp in made:
        lp.close()


# -- deploy usb ---------------------------------------------------------------

@needs_root
def test_usb_writes_syncs_and_verifies(image, loop):
    lp = loop()
    p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--force", "--yes")
    assert p.returncode == 0, p.stderr
    assert "verified" in p.stdout and deploy.sha256(image) in p.stdout
    data = image.read_bytes()
    assert lp.read(len(data)) == data  # the backing file, not the device's page cache
    assert lp.read(64, len(data)) == b"\xa5" * 64  # nothing written past the image
    assert read_image_config(Path(lp.dev))["ip_self"] == "10.9.0.2"


@needs_root
def test_usb_refuses_a_device_that_is_not_removable(image, loop):
    """A loop device: sysfs removable 0, under /sys/devices/virtual (no USB)."""
    lp = loop()
    dev = deploy.inspect_device(lp.dev)
    assert not dev.removable and not dev.usb and not dev.mounts
    p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--yes")
    assert p.returncode == 2
    assert "not removable and not on USB" in p.stderr and "--force" in p.stderr
    assert lp.read(4096) == b"\xa5" * 4096


@needs_root
def test_usb_refuses_a_mounted_device_even_with_force(image, loop, tmp_path):
    lp = loop()
    subprocess.run(["mkfs.ext2", "-q", lp.dev], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", lp.dev, str(mnt)], check=True)
    try:
        before = lp.read(8192)
        p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--force", "--yes")
        assert p.returncode == 2 and "is mounted or in use" in p.stderr and str(mnt) in p.stderr
        assert lp.read(8192) == before
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@needs_root
def test_usb_refuses_a_device_smaller_than_the_image(image, loop):
    lp = loop(size=1 << 20)
    p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--force", "--yes")
    assert p.returncode == 2 and "would be cut short" in p.stderr
    assert lp.read(4096) == b"\xa5" * 4096


@needs_root
def test_usb_asks_before_writing(image, loop):
    lp = loop()
    p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--force", stdin="n\n")
    assert p.returncode == 1 and "Overwrite" in p.stdout and "Aborted" in p.stderr
    assert lp.read(4096) == b"\xa5" * 4096
    p = _cli("deploy", "usb", "--device", lp.dev, "--image", str(image), "--force", stdin="y\n")
    assert p.returncode == 0, p.stderr
    assert lp.read(image.stat().st_size) == image.read_bytes()


@needs_root
def test_usb_read_back_catches_a_device_that_changed_the_data(image, loop):
    """The backing file is changed under the loop device after the write,
    beyond the first read-back chunk: the read-back goes past the page cache,
    sees it, and the head is zeroed."""
    lp = loop()

    def corrupt(phase: str, done: int, total: int) -> None:
        if phase == "verify" and done == deploy.CHUNK:
            with open(lp.backing, "r+b") as fh:
                fh.seek(2 * deploy.CHUNK + 100)
                fh.write(b"\x00\xff")
                fh.flush()
                os.fsync(fh.fileno())

    with pytest.raises(deploy.DeployError, match="read back sha256 .* differs") as err:
        deploy.write_to_device(image, lp.dev, force=True, progress=corrupt)
    assert "holds no bootable image" in str(err.value)
    assert lp.read(deploy.HEAD) == bytes(deploy.HEAD)


@needs_root
def test_usb_failed_write_leaves_no_bootable_image(image, loop, tmp_path):
    """A device that fails mid-write: a loop device over a 1.5 MiB tmpfs, its
    file sparse beyond, so the writes past ~1.5 MiB fail at the sync (EIO)."""
    fs = tmp_path / "small"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(fs)], check=True)
    try:
        backing = fs / "stick.bin"
        with open(backing, "wb") as fh:
            fh.truncate(8 << 20)
        dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                             text=True, check=True).stdout.strip()
        try:
            p = _cli("deploy", "usb", "--device", dev, "--image", str(image), "--force", "--yes")
            assert p.returncode == 2, p.stdout + p.stderr
            assert re.search(r"failed at byte \d+ of \d+", p.stderr), p.stderr
            assert "holds no bootable image" in p.stderr
            with open(backing, "rb") as fh:
                assert fh.read(deploy.HEAD) == bytes(deploy.HEAD)
        finally:
            subprocess.run(["losetup", "-d", dev], check=False)
    finally:
        subprocess.run(["umount", str(fs)], check=False)


@needs_root
def test_usb_interrupted_write_invalidates_the_old_image(image, loop):
    """A stick holding a good image, rewritten and interrupted (Ctrl-C) after
    the first chunk: no boot sector is left, and the interruption says so."""
    lp = loop()
    deploy.write_to_device(image, lp.dev, force=True)
    assert lp.read(deploy.HEAD) == image.read_bytes()[: deploy.HEAD] != bytes(deploy.HEAD)

    def interrupt(phase: str, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as err:
        deploy.write_to_device(image, lp.dev, force=True, progress=interrupt)
    assert any("holds no bootable image" in n for n in err.value.__notes__)
    assert lp.read(deploy.HEAD) == bytes(deploy.HEAD)


def test_removable_or_usb_from_sysfs(tmp_path):
    """inspect_device reads /sys/dev/block/MAJ:MIN: a removable flag of 1, or
    a device below a USB bus with flag 0 (many USB SSDs), counts as removable."""
    st = os.stat("/dev/loop0")  # any block device node: its numbers key the fake sysfs
    majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    for i, (where, flag, want) in enumerate((("devices/pci0000:00/0000:00:14.0/usb2/2-1/block/sdz", "0", True),
                              ("devices/pci0000:00/0000:00:17.0/ata1/block/sdz", "1", True),
                              ("devices/pci0000:00/0000:00:17.0/ata1/block/sdz", "0", False))):
        sysfs = tmp_path / f"sys{i}"
        dev = sysfs / where
        dev.mkdir(parents=True)
        for name, value in (("size", "65536"), ("removable", flag), ("ro", "0"), ("dev", majmin)):
            (dev / name).write_text(value + "\n")
        (sysfs / "dev" / "block").mkdir(parents=True)
        (sysfs / "dev" / "block" / majmin).symlink_to(dev)
        d = deploy.inspect_device("/dev/loop0", sysfs=sysfs, proc=tmp_path / "noproc")
        assert d.looks_removable is want and d.size == 65536 * 512
        if want:
            deploy.check_device(d, 1 << 20)
        else:
            with pytest.raises(deploy.DeployError, match="not removable"):
                deploy.check_device(d, 1 << 20)


# -- deploy pxe ---------------------------------------------------------------

def test_pxe_tree(image, tmp_path):
    out = tmp_path / "tftp"
    p = _cli("deploy", "pxe", "--dir", str(out), "--image", str(image),
             "--http-url", "http://192.0.2.1:8080/boot/")
    assert p.returncode == 0, p.stderr
    script = (out / "boot.ipxe").read_text()
    assert script.startswith("#!ipxe\n") and "sanboot http://192.0.2.1:8080/boot/hftos.img\n" in script
    served = (out / "hftos.img").read_bytes()
    data = image.read_bytes()
    assert len(served) % deploy.CYLINDER == 0 and len(served) >= len(data)
    assert served[: len(data)] == data and not any(served[len(data):])
    m = json.loads((out / "pxe.json").read_text())
    assert m["image_sha256"] == deploy.sha256(image) and m["config"]["ip_self"] == "10.9.0.2"
    for name in ("undionly.kpxe", "ipxe.efi"):  # iPXE for firmware PXE (Debian's ipxe)
        assert (out / name).read_bytes() == deploy.IPXE_CHAIN[name].read_bytes()
    assert oct((out / "hftos.img").stat().st_mode & 0o777) == "0o644"


def test_console_status_reads_the_end_of_a_run():
    assert hw.console_status(b"HFTOS READY\nreplaying") is None
    dump = b"\n@@HFTDUMP 1 BEGIN\nC orders 0\n@@HFTDUMP END records=0 crc32=0123abcd\n"
    assert hw.console_status(b"HFTOS READY\n" + dump) == debug_exit_status(EXIT_OK)
    assert hw.console_status(b"*** halted: exit code crashed (0x12)\n") == debug_exit_status(0x12)
    assert hw.console_status(b"nic test failed: exit code 0x14\n") == debug_exit_status(0x14)
    assert hw.console_status(b"x\npanic: no TSC\n") == debug_exit_status(0x11)
    assert hw.booted_by(b"hftos stage2\r\n").startswith("bios")
    assert hw.booted_by(b"hftos uefi tsc=0x1\r\n").startswith("uefi")
    assert hw.booted_by(b"garbage").startswith("unknown")


def test_hw_and_media_options_are_checked():
    bad = [dict(target="hw"), dict(target="hw", iface="x", console="/dev/null", media="disk"),
           dict(target="hw", iface="x", console="/dev/null", media="usb"),
           dict(target="hw", iface="x", console="/dev/null", media="pxe"),
           dict(iface="x"), dict(media="usb", boot="pvh"), dict(media="pxe", network="dgram"),
           dict(media="usb", sut="linux-socket")]
    for kw in bad:
        with pytest.raises(ConfigError):
            RunSpec(**kw).validate()
    RunSpec(target="hw", iface="x", console="/dev/null", media="pxe", mac=GUEST_MAC).validate()


# -- boots that trade ---------------------------------------------------------

def _traded(res) -> dict:
    info = json.loads((res.run_dir / "run.json").read_text())
    assert res.status == "ok" and info["status"] == "ok"
    assert info["orders"]["equal"] is True and info["orders"]["sut"] == info["orders"]["golden"] > 0
    return info


#: The loader's first line on each firmware path: SeaBIOS runs stage 1/2,
#: OVMF runs the image's EFI/BOOT/BOOTX64.EFI.
LOADER_LINE = {"bios": "hftos stage2", "uefi": "hftos uefi tsc="}


@needs_root
@pytest.mark.parametrize("boot", ["bios", "uefi"])
def test_usb_storage_boot_trades_ritch(tmp_path, boot):
    res = run(RunSpec(media="usb", boot=boot, accel="tcg", out=tmp_path / "run",
                      boot_timeout=120.0))
    info = _traded(res)
    assert info["spec"]["media"] == "usb" and info["spec"]["boot"] == boot
    serial = (res.run_dir / "serial.log").read_text(errors="replace")
    assert LOADER_LINE[boot] in serial and "1b36:000d" in serial  # our loader ran; the xHCI is there
    print(f"usb {boot}: ready {info['phases_s']['ready']} s")


@needs_root
@pytest.mark.parametrize("boot", ["bios", "uefi"])
def test_pxe_boot_trades_ritch(tmp_path, boot):
    res = run(RunSpec(media="pxe", boot=boot, accel="tcg", out=tmp_path / "run",
                      boot_timeout=120.0))
    info = _traded(res)
    assert info["spec"]["boot"] == boot
    assert info["pxe"]["dhcp_acks"] >= 1 and info["pxe"]["tftp_sent"][-1].endswith("boot.ipxe")
    assert info["pxe"]["http_requests"] > 0
    assert LOADER_LINE[boot] in (res.run_dir / "serial.log").read_text(errors="replace")
    assert not [n for n in netns_list() if info["network"]["netns"] == n]
    print(f"pxe {boot}: ready {info['phases_s']['ready']} s, "
          f"{info['pxe']['http_requests']} HTTP reads")


# -- hardware mode, QEMU standing in ------------------------------------------

class StandIn:
    """A QEMU machine that hftlab sees only as IFACE (a tap in a namespace of
    the test's) and TTY (its serial port on a pty), started paused: its
    power button is its HMP monitor's `cont`. No isa-debug-exit, like a machine."""

    def __init__(self, tmp: Path, netns: str, media: list[str]) -> None:
        self.netns, self.mon = netns, tmp / "mon.sock"
        self.iface = "sut0"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "tuntap", "add", "dev", self.iface, "mode", "tap"], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        cmd = ["ip", "netns", "exec", netns, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max",
               "-m", "256", "-display", "none", "-vga", "none", "-nodefaults", "-S",
               "-serial", "pty", "-monitor", f"unix:{self.mon},server=on,wait=off",
               "-netdev", f"tap,id=n0,ifname={self.iface},script=no,downscript=no", *media]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()  # "char device redirected to /dev/pts/N (label serial0)"
        m = re.search(r"(/dev/pts/\d+)", line)
        assert m, f"QEMU did not say where its pty is: {line!r}"
        self.tty = m.group(1)

    def power_cmd(self) -> str:
        return (f"{sys.executable} -c \"import socket,time; s=socket.socket(socket.AF_UNIX); "
                f"s.connect('{self.mon}'); s.sendall(b'cont\\n'); time.sleep(0.2)\"")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


def _hw_run(stand_in: StandIn, out: Path, *args: str) -> dict:
    p = _cli("run", "--target", "hw", "--iface", stand_in.iface, "--console", stand_in.tty,
             "--power-cmd", stand_in.power_cmd(), "--accel", "tcg", "--out", str(out), *args,
             netns=stand_in.netns)
    info = json.loads((out / "run.json").read_text())
    assert p.returncode == 0, p.stdout + p.stderr + json.dumps(info.get("error"))
    assert info["status"] == "ok" and info["orders"]["equal"] is True and info["orders"]["sut"] > 0
    assert info["spec"]["target"] == "hw" and info["hw"]["iface"] == stand_in.iface
    assert info["hw"]["console"] == stand_in.tty and info["network"]["mode"] == "hw"
    assert info["hw"]["booted_by"].startswith("bios")
    for name in ("serial.log", "wire.pcapng", "orders.parquet", "latency.parquet", "sut_log.arrow"):
        assert (out / name).is_file(), name
    # IFACE is left as it was found: hftlab's address and neighbour entry are gone
    addrs = subprocess.run(["ip", "-n", stand_in.netns, "-4", "addr", "show", "dev", stand_in.iface],
                           capture_output=True, text=True).stdout
    assert "10.201.0.1" not in addrs
    return info


@needs_root
def test_hw_run_from_the_usb_stick_hftlab_writes(tmp_path, loop):
    stick = loop(size=16 << 20)
    qemu = StandIn(tmp_path, f"hfttest-hwusb{os.getpid() % 10000}",
                   ["-device", "e1000,netdev=n0,romfile=,mac=" + GUEST_MAC,
                    "-drive", f"if=none,id=stick,format=raw,file={stick.dev}",
                    "-device", "qemu-xhci,id=xhci", "-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=1"])
    try:
        info = _hw_run(qemu, tmp_path / "run", "--media", "usb", "--device", stick.dev, "--force")
    finally:
        qemu.close()
    assert info["hw"]["deploy"]["verified"] is True
    assert info["hw"]["deploy"]["sha256"] == info["image_sha256"]
    print(f"hw usb: ready {info['phases_s']['ready']} s after power-on")


@needs_root
def test_hw_run_by_pxe_from_hftlab_on_iface(tmp_path):
    rom = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
    qemu = StandIn(tmp_path, f"hfttest-hwpxe{os.getpid() % 10000}",
                   ["-device", f"e1000,netdev=n0,romfile={rom},bootindex=1,mac={GUEST_MAC}"])
    try:
        info = _hw_run(qemu, tmp_path / "run", "--media", "pxe", "--mac", GUEST_MAC)
    finally:
        qemu.close()
    assert info["pxe"]["dhcp_acks"] >= 1 and info["pxe"]["http_requests"] > 0
    print(f"hw pxe: ready {info['phases_s']['ready']} s after power-on")
