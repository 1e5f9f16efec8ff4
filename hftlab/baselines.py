"""hftlab.baselines: the Linux baselines, run where HFT-OS runs.

A baseline is a C program in baselines/ that links kernel_src/core and keeps
HFT-OS's contract (kernel_src/include/hftos_abi.h): MoldUDP64 in on md_port,
control on ctl_port, OUCH out to the peer's order_port, a ready line, and the
tslog dump at STOP. hftlab runs it in one of two places:

* ``where="guest"`` (like for like): the only program of a Linux guest built
  from Debian's packages (hftlab.guest), booted by the same QEMU, accel, NIC
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._proc import spawn
from .build import ROOT, sha256
from .errors import BuildError, ConfigError, RunError
from .net import STATE_DIR, Capture, RunNetwork, _ip
from .vm import ConsoleProcess

__all__ = ["BASELINES", "WHERE", "READY", "build_baseline", "baseline_binary", "VethNetwork",
           "HostProcess", "INTERNAL_SPAN", "execute"]

BASELINES = ("linux-socket", "linux-packet", "linux-dpdk")
WHERE = ("guest", "host")
READY = b"BASELINE READY"
BUILD_DIR = ROOT / "build" / "baselines"
SRC_DIR = ROOT / "baselines"

#: Where each SUT's internal span (tsc_rx .. tsc_tx) starts and ends.
INTERNAL_SPAN = {
    "hftos": "tsc_rx: RX descriptor DD bit seen by the poll loop; tsc_tx: right after the "
             "TDT doorbell write",
    "linux-socket": "tsc_rx: the kernel's software RX timestamp (SO_TIMESTAMPING, taken in "
                    "the driver's receive path; moved to the TSC by a CLOCK_REALTIME/rdtsc "
                    "pair); tsc_tx: right after send() returned. Includes the kernel's UDP "
                    "receive and send paths",
    "linux-packet": "tsc_rx: the poll loop sees the frame in the AF_PACKET RX ring "
                    "(TPACKET_V2 tp_status; the kernel's ring timestamp is kept as the "
                    "record's pad, the cycles from tpacket_rcv to tsc_rx); tsc_tx: right "
                    "after send() on the packet socket returned (PACKET_QDISC_BYPASS: the "
                    "driver's xmit included)",
    "linux-dpdk": "tsc_rx: the poll loop reaches the frame that rte_eth_rx_burst returned "
                  "(the e1000 PMD saw its descriptor's DD bit, as HFT-OS's loop does); tsc_tx: "
                  "right after rte_eth_tx_burst returned (TDT doorbell written). No kernel "
                  "in either path",
}

#: EAL options of linux-dpdk on the host (a reference): no hugepages, no PCI,
#: DPDK's af_packet PMD on the namespace's eth0 (the kernel still carries the
#: frames to it; the like-for-like DPDK run is the guest's).
DPDK_HOST_EAL = ("--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                 "--log-level=lib.eal:notice")


def baseline_binary(name: str) -> Path:
    return BUILD_DIR / name


def build_baseline(name: str = "linux-socket") -> Path:
    """make -C baselines (which builds the core's host library first);
    returns the statically linked binary."""
    if name not in BASELINES:
        raise ConfigError(f"baseline {name!r}: available: {', '.join(BASELINES)}")
    p = subprocess.run(["make", "-C", str(SRC_DIR), "-j2", f"OUT={BUILD_DIR}"],
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        tail = (p.stdout + p.stderr)[-3000:]
        raise BuildError(f"make -C baselines failed:\n{tail}")
    exe = baseline_binary(name)
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
        from .net import cleanup_stale

        cleanup_stale()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        for ns in (self.netns, self.sut_netns):
            (STATE_DIR / f"{ns}.pid").write_text(str(os.getpid()))  # before the namespace: cleanup_stale
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        self._up = True
        n, s = ("-n", self.netns), ("-n", self.sut_netns)
        _ip(*n, "link", "add", self.tap, "type", "veth", "peer", "name", self.sut_if,
            "netns", self.sut_netns)
        _ip(*n, "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.tap)
        _ip(*n, "link", "set", self.tap, "up", "txqueuelen", "10000", "mtu", "9000")
        _ip(*s, "link", "set", self.sut_if, "address", self.sut_mac, "mtu", "9000")
        _ip(*s, "addr", "add", f"{self.guest_ip}/{self.prefix}", "dev", self.sut_if)
        _ip(*s, "link", "set", self.sut_if, "up")
        info = json.loads(_ip(*n, "-j", "link", "show", self.tap).stdout)
        self.host_mac = info[0]["address"]
        return self

    def down(self) -> None:
        if self._up:
            for ns in (self.sut_netns, self.netns):
                _ip("netns", "del", ns, check=False)
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


# --- the run --------------------------------------------------------------------

@dataclass
class _Link:
    """What run._trade and the hostile injection need of a network."""

    netns: str
    ifname: str
    host_ip: str
    guest_ip: str
    host_mac: str


def execute(spec, run_dir: Path, accel, golden, info: dict[str, Any], say, feed):
    """Run a baseline (spec.sut) at spec.where; the RunResult of run._collect."""
    from . import run as _run

    exe = build_baseline(spec.sut)
    info["baseline"] = {"binary": str(exe), "sha256": sha256(exe), "where": spec.where,
                        "internal_span": INTERNAL_SPAN[spec.sut]}
    if spec.where == "host":
        net: RunNetwork = VethNetwork(info["run_id"], _run.GUEST_MAC)
    else:
        net = RunNetwork(info["run_id"])
    with net:
        params = _run._params(spec, golden, net.host_ip, net.guest_ip, net.host_mac)
        info["network"] = {"mode": "veth" if spec.where == "host" else "tap",
                           "netns": net.netns, "link": net.tap, "host_ip": net.host_ip,
                           "guest_ip": net.guest_ip, "md_port": params.md_port,
                           "order_port": params.order_port}
        cfg = run_dir / "engine_config.bin"
        cfg.write_bytes(spec.config.to_bytes())
        if spec.where == "host":
            sut = _host_process(spec, run_dir, net, params, cfg, exe, info)
            ok_status = 0
        else:
            from . import guest

            sut = guest.guest_vm(spec, run_dir, accel, net, params, cfg, exe, info)
            ok_status = None  # isa-debug-exit, as HFT-OS
        status, sink, rep = _trade_on(spec, run_dir, net, params, sut, feed, golden, info,
                                       say)
    if spec.where == "guest":
        from .guest import guest_phases

        info["guest"]["phases_s"] = guest_phases((run_dir / "serial.log").read_bytes())
    return _run._collect(spec, run_dir, status, sink.payloads(), sink.rx_ns, rep, feed, golden,
                         info, ok_status=ok_status)


def _host_process(spec, run_dir, net: VethNetwork, params, cfg: Path, exe: Path, info) -> HostProcess:
    cpu = None if spec.vcpu_core is None else spec.vcpu_core % (os.cpu_count() or 1)
    args = baseline_args(params, str(cfg), peer_mac=net.host_mac, cpu=cpu,
                         extra=spec.baseline_args)
    if spec.sut == "linux-dpdk":
        # DPDK answers ARP and owns the address: the kernel's copy of eth0
        # gives its address up, so it neither answers ARP nor sends ICMP
        # port unreachable for every datagram.
        _ip("-n", net.sut_netns, "addr", "flush", "dev", net.sut_if)
        eal = [*DPDK_HOST_EAL, "-l", str(0 if cpu is None else cpu),
               f"--file-prefix=hftlab-{info['run_id']}",
               f"--vdev=net_af_packet0,iface={net.sut_if},qpairs=1"]
        args = [*eal, "--", *args, "--bind", net.guest_ip]
    info["baseline"]["args"] = args
    return HostProcess(["ip", "netns", "exec", net.sut_netns, str(exe), *args], run_dir)


def _trade_on(spec, run_dir: Path, net: RunNetwork, params, sut, feed, golden, info, say):
    """Capture, start the SUT, then the same ready/replay/STOP sequence as HFT-OS."""
    from . import exchange
    from . import run as _run

    tx = exchange.udp_socket(net.netns, net.host_ip, 0)
    rx = exchange.udp_socket(net.netns, net.host_ip, params.order_port)
    ctl = lambda: tx.sendto(exchange.control_message(1, params.ctl_key),  # noqa: E731
                            (net.guest_ip, params.ctl_port))
    pre = None
    if spec.hostile:
        host = exchange.Endpoint(net.host_mac, net.host_ip, 40000)
        frames = _run._hostile(feed, _run.GUEST_MAC, host, net.guest_ip, params.md_port)
        info["hostile"] = [name for name, _ in frames]

        def pre() -> None:
            with exchange.raw_socket(net.netns, net.tap) as raw:
                for _, f in frames:
                    raw.send(f)
            time.sleep(0.2)
    try:
        with Capture(net, run_dir / "wire.pcapng") as cap, sut:
            t_q = time.monotonic()
            res = _run._trade(spec, sut, feed, tx, rx, (net.guest_ip, params.md_port), ctl,
                              golden, info, say, pre, ready=READY, capture=cap)
            info["phases_s"]["sut_total"] = round(time.monotonic() - t_q, 3)
    finally:
        tx.close()
        rx.close()
    return res
