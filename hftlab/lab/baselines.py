"""hftlab.lab.baselines: the Linux baselines, run where HFT-OS runs.

A baseline is a C program in baselines/ that links kernel_src/core and keeps
HFT-OS's contract (kernel_src/include/hftos_abi.h): MoldUDP64 in on md_port,
control on ctl_port, OUCH out to the peer's order_port, a ready line, and the
tslog dump at STOP. hftlab runs it in one of two places:

* ``where="guest"`` (like for like): the only program of a Linux guest built
  from Debian's packages (hftlab.lab.guest), booted by the same QEMU, accel, NIC
  model and tap as HFT-OS. The guest leaves QEMU through isa-debug-exit, so
  the run ends with the same QEMU status as HFT-OS's (33 for ok).
* ``where="host"`` (a reference, no virtualization): a process in its own
  network namespace, joined to the run's namespace by a veth pair that
  stands where the tap stands. The replayer, the order sink and dumpcap use
  the run namespace's end (``hft0``) exactly as they use the tap.

Either way the run directory is the one HFT-OS writes (run.json, wire.pcapng,
serial.log, sut_log.arrow, orders.parquet, latency.parquet), and the orders
must equal the golden model's bit for bit.

Where each SUT's internal span starts and ends is recorded in run.json
(``internal_span``): for linux-socket it starts at the kernel's software RX
timestamp (SO_TIMESTAMPING) and ends when send() returns; for linux-packet
it starts when the poll loop sees the frame in the AF_PACKET ring.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from hftlab.util.proc import spawn
from hftlab.errors import BuildError, ConfigError, RunError
from hftlab.lab.net import STATE_DIR, RunNetwork, cleanup_stale, ip
from hftlab.lab.vm import ConsoleProcess
from hftlab.model.suts import INTERNAL_SPAN, SUTS
from hftlab.util.paths import ROOT

__all__ = ["BASELINES", "WHERE", "READY", "build_baseline", "baseline_binary", "VethNetwork",
           "HostProcess", "INTERNAL_SPAN", "baseline_args", "host_process", "DPDK_HOST_EAL"]

BASELINES = tuple(s for s in SUTS if s != "hftos")
WHERE = ("guest", "host")
READY = b"BASELINE READY"
BUILD_DIR = ROOT / "build" / "baselines"
SRC_DIR = ROOT / "baselines"


#: EAL options of linux-dpdk on the host (a reference): no hugepages, no PCI,
#: DPDK's af_packet PMD on the namespace's eth0 (the kernel still carries the
#: frames to it; the like-for-like DPDK run is the guest's).
DPDK_HOST_EAL = ("--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                 "--log-level=lib.eal:notice")


def baseline_binary(name: str) -> Path:
    return BUILD_DIR / name


def build_baseline(name: str = "linux-socket", strategy: str | os.PathLike[str] | None = None) -> Path:
    """make -C baselines (which builds the core's host library first, with
    `strategy`: a C file or bundled name, None the trigger); returns the
    statically linked binary."""
    from hftlab.lab.build import strategy_build_dir

    if name not in BASELINES:
        raise ConfigError(f"baseline {name!r}: available: {', '.join(BASELINES)}")
    src, core_build = strategy_build_dir(strategy)
    out = BUILD_DIR if core_build.name == "build" else BUILD_DIR.parent / f"baselines-{core_build.name}"
    cmd = ["make", "-C", str(SRC_DIR), "-j2", f"OUT={out}"]
    if out != BUILD_DIR:
        cmd += [f"STRATEGY={src}", f"CORE_BUILD={core_build}"]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        tail = (p.stdout + p.stderr)[-3000:]
        raise BuildError(f"make -C baselines failed:\n{tail}")
    exe = out / name
    if not exe.is_file():
        raise BuildError(f"make -C baselines succeeded but {exe} is missing")
    return exe


def baseline_args(params, config_file: str, *, peer_mac: str | None, cpu: int | None,
                  debug_exit: int | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """The baseline's command line for a run's OsParams (ports, peer, key,
    log capacity) and its engine config file."""
    args = ["--config", config_file, "--peer", params.ip_peer, "--key", str(params.ctl_key),
            "--md-port", str(params.md_port), "--ctl-port", str(params.ctl_port),
            "--order-port", str(params.order_port), "--src-port", str(params.src_port),
            "--log-capacity", str(params.log_capacity), "--cpu", str(-1 if cpu is None else cpu)]
    if peer_mac:
        args += ["--peer-mac", peer_mac]
    if debug_exit is not None:
        args += ["--debug-exit", hex(debug_exit)]
    if params.hiccup_ns:
        args += ["--hiccups", str(params.hiccup_ns), "--hiccup-threshold",
                 str(params.hiccup_threshold_ns)]
    return args + list(extra)


# --- host: a veth pair between two namespaces ---------------------------------

class VethNetwork(RunNetwork):
    """The run namespace (replayer, sink, capture on ``hft0``) and a second
    namespace for the SUT (``eth0``), joined by a veth pair instead of a tap.

    Same names and addresses as RunNetwork, so Capture, the replayer and the
    hostile-frame injection use it unchanged; the SUT's end carries the MAC
    the guest NIC has (``sut_mac``)."""

    def __init__(self, run_id: str, sut_mac: str, subnet: str = "10.201.0.0/24") -> None:
        super().__init__(run_id, subnet)
        self.sut_mac = sut_mac
        self.sut_netns = self.netns + "-s"
        self.sut_if = "eth0"

    def up(self) -> "VethNetwork":
        if os.geteuid() != 0:
            raise RunError("network namespaces and a veth pair need root (CAP_NET_ADMIN)")
        cleanup_stale()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        for ns in (self.netns, self.sut_netns):
            (STATE_DIR / f"{ns}.pid").write_text(str(os.getpid()))  # before the namespace: cleanup_stale
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        self._up = True
        n, s = ("-n", self.netns), ("-n", self.sut_netns)
        ip(*n, "link", "add", self.tap, "type", "veth", "peer", "name", self.sut_if,
            "netns", self.sut_netns)
        ip(*n, "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.tap)
        ip(*n, "link", "set", self.tap, "up", "txqueuelen", "10000", "mtu", "9000")
        ip(*s, "link", "set", self.sut_if, "address", self.sut_mac, "mtu", "9000")
        ip(*s, "addr", "add", f"{self.guest_ip}/{self.prefix}", "dev", self.sut_if)
        ip(*s, "link", "set", self.sut_if, "up")
        info = json.loads(ip(*n, "-j", "link", "show", self.tap).stdout)
        self.host_mac = info[0]["address"]
        return self

    def down(self) -> None:
        if self._up:
            for ns in (self.sut_netns, self.netns):
                ip("netns", "del", ns, check=False)
                (STATE_DIR / f"{ns}.pid").unlink(missing_ok=True)
            self._up = False


class HostProcess(ConsoleProcess):
    """A baseline process with the interface run._trade drives a Vm through
    (wait_serial, pin, poll, wait, stop); its stdout and stderr are the
    run's serial.log."""

    what = "the baseline"

    def __init__(self, cmd: list[str], workdir: Path) -> None:
        self.cmd = cmd
        self.serial_path = workdir / "serial.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.started_at = 0.0

    def start(self) -> "HostProcess":
        self.started_at = time.monotonic()
        with open(self.serial_path, "wb") as out:
            self.proc = spawn(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT)
        return self

    def pin(self) -> list[int]:
        return []  # the baseline pins itself (--cpu)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "HostProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()







def host_process(spec, run_dir, net: VethNetwork, params, cfg: Path, exe: Path, info) -> HostProcess:
    cpu = None if spec.vcpu_core is None else spec.vcpu_core % (os.cpu_count() or 1)
    args = baseline_args(params, str(cfg), peer_mac=net.host_mac, cpu=cpu,
                         extra=spec.baseline_args)
    if spec.sut == "linux-dpdk":
        # DPDK answers ARP and owns the address: the kernel's copy of eth0
        # gives its address up, so it neither answers ARP nor sends ICMP
        # port unreachable for every datagram.
        ip("-n", net.sut_netns, "addr", "flush", "dev", net.sut_if)
        eal = [*DPDK_HOST_EAL, "-l", str(0 if cpu is None else cpu),
               f"--file-prefix=hftlab-{info['run_id']}",
               f"--vdev=net_af_packet0,iface={net.sut_if},qpairs=1"]
        args = [*eal, "--", *args, "--bind", net.guest_ip]
    info["baseline"]["args"] = args
    return HostProcess(["ip", "netns", "exec", net.sut_netns, str(exe), *args], run_dir)


