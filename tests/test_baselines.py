"""The Linux baselines (hftlab.baselines, hftlab.guest, baselines/).

* the pieces without root: the baseline builds and refuses bad arguments,
  the newc writer, the bzImage cut, module dependencies, the guest VM's
  QEMU command line;
* end to end (root: netns, veth, tap): linux-socket, linux-packet and
  linux-dpdk on the host and in the Debian guest (linux-dpdk there with
  uio_pci_generic, hugepages and the e1000 PMD) trade and match the golden
  model bit for bit, and hostile frames reach them without a crash;
* the guest kernel comes from Debian's packages inside the test run and is
  cached between runs (skipped when neither the registry nor a cache is
  there).
"""
from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from hftlab import guest
from hftlab.baselines import BASELINES, baseline_binary, build_baseline
from hftlab.errors import BuildError, ToolMissingError
from hftlab.net import netns_list
from hftlab.run import RunSpec, run
from hftlab.vm import VmSpec, choose_accel

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="netns, veth and tap need root")


@pytest.fixture(scope="module")
def exe() -> Path:
    return build_baseline("linux-socket")


@pytest.fixture(scope="module")
def kernel() -> guest.GuestKernel:
    try:
        return guest.fetch_kernel()
    except (BuildError, ToolMissingError) as exc:
        pytest.skip(f"no guest kernel: neither Debian's registry nor a cache ({exc})")


# --- without root -----------------------------------------------------------------

@pytest.mark.parametrize("sut", BASELINES)
def test_baseline_is_static_and_checks_its_arguments(exe, sut, tmp_path):
    exe = baseline_binary(sut)
    head = exe.read_bytes()[:65536]
    assert not guest._elf_has_interp(head), "the guest has no dynamic loader"
    p = subprocess.run([str(exe)], capture_output=True, text=True)
    assert p.returncode == 2 and "usage" in p.stderr
    short = tmp_path / "cfg"
    short.write_bytes(b"\0" * 7)
    p = subprocess.run([str(exe), "--config", str(short), "--peer", "127.0.0.1", "--key", "1",
                        "--peer-mac", "02:00:00:00:00:01", "--bind", "127.0.0.1"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "struct engine_config" in p.stderr


def test_packet_baseline_needs_the_peer_mac(exe, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.write_bytes(b"\0" * 8)
    p = subprocess.run([str(baseline_binary("linux-packet")), "--config", str(cfg), "--peer",
                        "127.0.0.1", "--key", "1"], capture_output=True, text=True)
    assert p.returncode == 2 and "--peer-mac" in p.stderr


def test_dpdk_baseline_checks_its_arguments_before_the_eal(tmp_path):
    """A bad command line fails before DPDK probes anything: no EAL lines."""
    exe = baseline_binary("linux-dpdk")
    cfg = tmp_path / "cfg"
    cfg.write_bytes(b"\0" * 8)
    p = subprocess.run([str(exe), "-l", "0", "--no-huge", "--", "--config", str(cfg), "--peer",
                        "127.0.0.1", "--key", "1", "--peer-mac", "02:00:00:00:00:01"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--bind" in p.stderr and "EAL:" not in p.stderr + p.stdout


def test_doctor_lists_what_the_baselines_need():
    """hftlab doctor: a row per baseline prerequisite, with the version it found."""
    from click.testing import CliRunner

    from hftlab.cli import main

    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code in (0, 1, 3), r.output
    rows = {line[7:27].strip(): line for line in r.output.splitlines() if line.startswith("  [")}
    for name in ("DPDK (linux-dpdk)", "busybox (guest)", "qboot (guest PVH)", "guest kernel cache"):
        assert name in rows, r.output
    dpdk = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True, text=True)
    if dpdk.returncode == 0:
        assert rows["DPDK (linux-dpdk)"].startswith("  [ok]")
        assert dpdk.stdout.strip() in rows["DPDK (linux-dpdk)"]
    assert "unknown" not in rows["ip"], "a version line, not ip's complaint about --version"


def _cpio_entries(blob: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive (a reader for the test only)."""
    out, at = {}, 0
    while True:
        assert blob[at: at + 6] == b"070701"
        f = [int(blob[at + 6 + 8 * i: at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = blob[at + 110: at + 110 + namesize - 1].decode()
        at += 110 + namesize
        at += -at % 4
        data = blob[at: at + size]
        at += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, data)


def test_cpio_newc_layout():
    c = guest.Cpio()
    c.file("a/b/c.txt", b"hello")
    c.symlink("bin/sh", "busybox")
    c.chardev("dev/console", 5, 1)
    blob = c.bytes()
    assert len(blob) % 512 == 0
    e = _cpio_entries(blob)
    assert e["a/b/c.txt"] == (stat.S_IFREG | 0o644, b"hello")
    assert stat.S_ISDIR(e["a"][0]) and stat.S_ISDIR(e["a/b"][0])
    assert stat.S_ISLNK(e["bin/sh"][0]) and e["bin/sh"][1] == b"busybox"
    assert stat.S_ISCHR(e["dev/console"][0])


def test_module_depends_reads_modinfo():
    ko = b"junk\0license=GPL\0depends=mii,libphy-x\0vermagic=6.1\0"
    assert guest.module_depends(ko) == ["mii", "libphy_x"]
    assert guest.module_depends(b"\0depends=\0") == []


def test_extract_vmlinux_refuses_non_bzimage():
    with pytest.raises(BuildError):
        guest.extract_vmlinux(b"\0" * 4096)


def test_vmspec_boots_a_kernel_without_a_disk(tmp_path):
    spec = VmSpec(image=None, workdir=tmp_path, accel=choose_accel("tcg"),
                  kernel=tmp_path / "vmlinux", initrd=tmp_path / "initrd", append="console=ttyS0",
                  bios=Path("/usr/share/qemu/qboot.rom"))
    cmd = spec.command()
    assert "-drive" not in cmd
    assert cmd[cmd.index("-kernel") + 1].endswith("vmlinux")
    assert cmd[cmd.index("-append") + 1] == "console=ttyS0"
    assert "-smp" not in cmd
    two = VmSpec(image=None, workdir=tmp_path, accel=choose_accel("tcg"), kernel=tmp_path / "k",
                 cpus=2).command()
    assert two[two.index("-smp") + 1] == "2"


# --- the guest image from Debian's packages -------------------------------------

def test_guest_kernel_from_debian_is_cached(kernel, exe, tmp_path):
    assert kernel.bzimage.is_file() and "e1000" in kernel.modules
    assert [p.stem for p in kernel.modules_for("e1000", dpdk=True)] == ["uio", "uio_pci_generic"]
    if kernel.vmlinux is not None:
        assert kernel.vmlinux.read_bytes()[:4] == b"\x7fELF"
    t0 = time.monotonic()
    again = guest.fetch_kernel()
    assert again == kernel and time.monotonic() - t0 < 5, "the second fetch must hit the cache"
    digest = guest.build_initrd(tmp_path / "initrd", kernel, "e1000", exe, {"IP": "10.0.0.2"},
                                {"engine.cfg": b"x"})
    e = _cpio_entries((tmp_path / "initrd").read_bytes())
    assert len(digest) == 64
    for name in ("init", "bin/busybox", "bin/baseline", "lib/modules/e1000.ko", "engine.cfg",
                 "dev/console", "hftlab.env"):
        assert name in e, name
    assert b"IP='10.0.0.2'" in e["hftlab.env"][1]
    guest.build_initrd(tmp_path / "initrd-dpdk", kernel, "e1000", exe, {}, {}, dpdk=True)
    e = _cpio_entries((tmp_path / "initrd-dpdk").read_bytes())
    assert "lib/modules/uio_pci_generic.ko" in e and "lib/modules/e1000.ko" not in e


# --- end to end -------------------------------------------------------------------

def _check_run(res, where: str) -> None:
    i = res.info
    assert res.status == "ok" and i["orders"]["equal"]
    assert i["orders"]["sut"] == i["orders"]["golden"] > 0
    assert i["spec"]["where"] == where and i["baseline"]["internal_span"]
    for f in ("run.json", "wire.pcapng", "serial.log", "sut_log.arrow", "orders.parquet",
              "latency.parquet"):
        assert (res.run_dir / f).is_file(), f
    s = res.summary()
    assert s["wire_ns"]["count"] == i["orders"]["sut"]
    assert i["counters"]["os_orders_sent"] == i["orders"]["sut"]
    if i["spec"]["sut"] != "linux-dpdk":  # DPDK's mbufs carry no kernel timestamp
        assert i["counters"]["os_rx_no_kernel_ts"] == 0


def _check_hostile(res) -> None:
    """Counters every baseline shares, and the frame-level ones of linux-packet."""
    c = res.info["counters"]
    assert c["mold_malformed"] >= 1
    if res.info["spec"]["sut"] in ("linux-packet", "linux-dpdk"):  # HFT-OS's net_parse_udp
        assert c["os_rx_bad"] >= 2 and c["os_rx_other"] >= 1, "bad checksum/UDP length, port"


@needs_root
@pytest.mark.parametrize("sut", BASELINES)
def test_host_baseline_trades_and_matches_golden(exe, sut, tmp_path):
    res = run(RunSpec(sut=sut, where="host", out=tmp_path / "run"))
    _check_run(res, "host")
    assert not [n for n in netns_list() if res.info["network"]["netns"] in n], "netns left behind"


@needs_root
@pytest.mark.parametrize("sut", BASELINES)
def test_host_baseline_survives_hostile_frames(exe, sut, tmp_path):
    res = run(RunSpec(sut=sut, where="host", hostile=True, out=tmp_path / "run"))
    _check_run(res, "host")
    _check_hostile(res)
    c = res.info["counters"]
    assert c["mold_gaps"] == 1 and c["mold_duplicates"] >= 1


@needs_root
@pytest.mark.parametrize("sut", BASELINES)
def test_guest_baseline_trades_and_matches_golden(kernel, exe, sut, tmp_path):
    res = run(RunSpec(sut=sut, where="guest", accel="tcg", out=tmp_path / "run"))
    _check_run(res, "guest")
    g = res.info["guest"]
    serial = (res.run_dir / "serial.log").read_text(errors="replace")
    assert f"BASELINE READY sut={sut}" in serial
    assert res.info["qemu_exit_status"] == 33
    # The default guest is a tuned Linux: CPU 1 isolated and tickless for the baseline.
    assert g["cpus"] == 2 and "guest: cpus online=0-1 isolated=1 nohz_full=1" in serial
    assert len(res.info["vcpu_threads"]) == 2
    if sut == "linux-dpdk":  # the NIC is DPDK's: no kernel driver, no kernel ARP probe
        assert g["kernel_package"] == kernel.package and g["modules"] == ["uio", "uio_pci_generic"]
        assert set(g["phases_s"]) == {"init", "link"}
        assert "driver=net_e1000_em" in serial and "-> uio_pci_generic" in serial
        c = res.info["counters"]
        assert c["nic_imissed"] == 0 and c["os_md_packets"] == c["mold_packets"]
    else:
        assert g["kernel_package"] == kernel.package and g["modules"] == ["e1000"]
        assert set(g["phases_s"]) == {"init", "link", "arp"}


@needs_root
@pytest.mark.parametrize("sut", BASELINES)
def test_guest_baseline_survives_hostile_frames(kernel, exe, sut, tmp_path):
    res = run(RunSpec(sut=sut, where="guest", accel="tcg", hostile=True, guest_cpus=1,
                      out=tmp_path / "run"))
    _check_run(res, "guest")
    _check_hostile(res)
    serial = (res.run_dir / "serial.log").read_text(errors="replace")
    assert res.info["guest"]["cpus"] == 1 and "guest: cpus online=0 isolated= " in serial


@needs_root
def test_guest_baseline_under_icount_counts_instructions(kernel, exe, tmp_path):
    """TCG-icount: the guest TSC counts instructions, so internal_cycles are
    the instructions of each order's path; the 2-vCPU guest falls back to
    one vCPU there (it does not boot under -icount) and says so."""
    res = run(RunSpec(sut="linux-dpdk", where="guest", accel="tcg-icount", max_count=1,
                      rate=2000, out=tmp_path / "run"))
    _check_run(res, "guest")
    g = res.info["guest"]
    assert g["cpus"] == 1 and "icount" in g["cpus_note"] and "nohz_full" not in g["cmdline"]
    assert res.info["counters"]["tsc_hz"] == pytest.approx(1e9, rel=0.01), "1 instruction = 1 ns"
    cyc = res.latency.column("internal_cycles").to_numpy()
    # One message per datagram: the whole path (PMD, engine, OUCH, TX) is
    # hundreds to a few thousand instructions, never the millions a
    # wall-clock TSC would show under TCG.
    assert 300 < cyc.min() and (cyc < 20_000).mean() > 0.9
