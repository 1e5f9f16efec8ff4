"""hftlab.lab.net: the run's private network and its capture.

Each run gets its own network namespace (``hftlab-<run id>``) holding one tap
device. QEMU runs inside the namespace and attaches the tap as its NIC's
backend; the replayer and the order sink open their sockets inside the same
namespace (hftlab._core.hx_udp_socket), so market data and orders cross only
that tap, never a real network. dumpcap captures the tap with nanosecond
timestamps into wire.pcapng.

Teardown deletes the namespace, which takes the tap with it; every
namespace is labelled with the pid that made it (a file in /run/hftlab), so
:func:`cleanup_stale` removes what a killed run left behind.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hftlab.util.proc import spawn, stop_group
from hftlab.errors import RunError, ToolMissingError
from hftlab.util.io import AtomicPath

__all__ = ["RunNetwork", "Capture", "cleanup_stale", "netns_list", "STATE_DIR"]

STATE_DIR = Path("/run/hftlab")
TAP = "hft0"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not shutil.which("ip"):
        raise ToolMissingError("ip", "apt-get install iproute2")
    p = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and p.returncode != 0:
        raise RunError(f"`ip {' '.join(args)}` failed: {p.stderr.strip()}")
    return p


def netns_list() -> list[str]:
    p = ip("-j", "netns", "list", check=False)
    try:
        return [n["name"] for n in json.loads(p.stdout or "[]")]
    except ValueError:
        return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cleanup_stale() -> list[str]:
    """Delete hftlab namespaces whose creating process is gone."""
    removed = []
    for name in netns_list():
        if not name.startswith("hftlab-"):
            continue
        owner = STATE_DIR / f"{name}.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and _pid_alive(pid):
            continue
        ip("netns", "del", name, check=False)
        owner.unlink(missing_ok=True)
        removed.append(name)
    return removed


#: the tap's transmit queue in frames (its ring toward QEMU): a burst of more
#: datagrams sent back to back than this would be dropped at the tap
TAP_TXQUEUELEN = 10000


@dataclass
class RunNetwork:
    """A namespace with a tap: host side ``host_ip``, guest ``guest_ip``."""

    run_id: str
    subnet: str = "10.201.0.0/24"

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        self.host_ip = str(net.network_address + 1)
        self.guest_ip = str(net.network_address + 2)
        self.prefix = net.prefixlen
        self.netns = f"hftlab-{self.run_id[-12:]}"
        self.tap = TAP
        self.host_mac = ""
        self._up = False

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.netns}"

    def up(self) -> "RunNetwork":
        if os.geteuid() != 0:
            raise RunError("a tap and a network namespace need root (CAP_NET_ADMIN)")
        if not Path("/dev/net/tun").exists():
            raise RunError("/dev/net/tun is missing: no tap devices on this host")
        cleanup_stale()
        # The owner file first: another process's cleanup_stale() deletes any
        # hftlab-* namespace it finds without a live owner, this one included
        # if it appeared before its owner file did.
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{self.netns}.pid").write_text(str(os.getpid()))
        self._up = True
        ip("netns", "add", self.netns)
        n = ("-n", self.netns)
        ip(*n, "link", "set", "lo", "up")
        ip(*n, "tuntap", "add", "dev", self.tap, "mode", "tap")
        ip(*n, "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.tap)
        # MTU 9000: the hostile-frame tests send an oversized frame through it
        ip(*n, "link", "set", self.tap, "up", "txqueuelen", str(TAP_TXQUEUELEN),
           "mtu", "9000")
        info = json.loads(ip(*n, "-j", "link", "show", self.tap).stdout)
        self.host_mac = info[0]["address"]
        return self

    def down(self) -> None:
        if self._up:
            ip("netns", "del", self.netns, check=False)
            (STATE_DIR / f"{self.netns}.pid").unlink(missing_ok=True)
            self._up = False

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def tap_stats(self) -> dict[str, int]:
        """The tap's counters as the host kernel sees them: tx is toward the
        guest (tx_dropped: frames QEMU did not read in time), rx from it."""
        p = ip("-n", self.netns, "-s", "-j", "link", "show", self.tap, check=False)
        try:
            s = json.loads(p.stdout)[0]["stats64"]
        except (ValueError, LookupError, TypeError):
            return {}
        return {f"{d}_{k}": int(s[d][k]) for d in ("tx", "rx") for k in ("packets", "dropped", "errors")
                if k in s.get(d, {})}

    def __enter__(self) -> "RunNetwork":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


class Capture:
    """dumpcap on the run's tap, nanosecond timestamps, pcapng."""

    def __init__(self, network: RunNetwork, out: Path) -> None:
        self.network = network
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self.tool = "dumpcap"

    def start(self, timeout: float = 10.0) -> "Capture":
        exe = shutil.which("dumpcap")
        if not exe:
            raise ToolMissingError("dumpcap", "apt-get install tshark (or wireshark-common)")
        self.out.unlink(missing_ok=True)
        cmd = [*self.network.exec_prefix(), exe, "-i", self.network.tap, "-w", str(self.out),
               "-B", "64", "-q"]
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
        # dumpcap says "Capturing on 'hft0'" once the socket is bound.
        deadline = time.monotonic() + timeout
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        seen = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stderr.read() or b""
            seen += chunk
            if b"Capturing on" in seen:
                self._stderr = seen
                return self
            if self.proc.poll() is not None:
                raise RunError(f"dumpcap exited: {seen.decode(errors='replace').strip()}")
            time.sleep(0.01)
        self.stop()
        raise RunError(f"dumpcap did not start within {timeout:.0f} s")

    def pin(self, cpus: set[int]) -> None:
        """Keep dumpcap (every thread) on `cpus`: off the SUT's core."""
        if self.proc is None:
            return
        try:
            tasks = os.listdir(f"/proc/{self.proc.pid}/task")
        except OSError:
            return  # already gone: the run will say why
        for tid in tasks:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass  # a thread that ended meanwhile

    #: libpcap's TPACKET_V3 ring hands packets to dumpcap a block at a time,
    #: when a block fills or its timeout (dumpcap: 250 ms) expires; a SIGINT
    #: before that loses the packets of the open block, i.e. the end of a
    #: run. So stop only after the last frame has had time to be handed over.
    FLUSH_S = 0.6

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the ring to hand over the last block, then SIGINT: dumpcap
        writes its statistics block and closes the file."""
        if self.proc is None or self.proc.poll() is not None:
            return
        time.sleep(self.FLUSH_S)
        stop_group(self.proc, signal.SIGINT, timeout)

    def __enter__(self) -> "Capture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DgramLink:
    """The no-root fallback: QEMU's dgram netdev on a pair of unix sockets.

    There is no tap and no kernel network stack: the replayer sends whole
    Ethernet frames (built by the core's net_build_udp) straight into QEMU's
    socket and receives the SUT's frames on its own, so there is nothing for
    dumpcap to watch. The capture is written by hftlab from the replayer's
    send times and the receive times instead (see write_pcapng), and run.json
    says so.
    """

    host_ip = "10.201.0.1"
    guest_ip = "10.201.0.2"
    host_mac = "02:48:46:54:4c:01"

    def __init__(self, workdir: Path) -> None:
        self.qemu_path = workdir / "link-qemu.sock"
        self.peer_path = workdir / "link-peer.sock"
        self.sock = None

    def netdev(self) -> str:
        return (f"dgram,id=n0,local.type=unix,local.path={self.qemu_path},"
                f"remote.type=unix,remote.path={self.peer_path}")

    def open(self):
        import socket as _s

        for p in (self.qemu_path, self.peer_path):
            p.unlink(missing_ok=True)
        self.sock = _s.socket(_s.AF_UNIX, _s.SOCK_DGRAM)
        self.sock.setsockopt(_s.SOL_SOCKET, _s.SO_RCVBUF, 8 << 20)
        self.sock.setsockopt(_s.SOL_SOCKET, _s.SO_SNDBUF, 8 << 20)
        self.sock.bind(str(self.peer_path))
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        for p in (self.qemu_path, self.peer_path):
            p.unlink(missing_ok=True)


def write_pcapng(path: Path, frames: list[tuple[int, bytes]], *, comment: str = "") -> None:
    """A pcapng with one Ethernet interface at nanosecond resolution
    (if_tsresol 9) holding (ts_ns, frame) records in time order."""
    import struct

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    def opt(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    shb_opts = (opt(1, comment.encode()) if comment else b"") + opt(4, b"hftlab") + opt(0, b"")
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb = block(1, struct.pack("<HHI", 1, 0, 0) + opt(2, b"hftlab-dgram") + opt(9, b"\x09") + opt(0, b""))
    with AtomicPath(path) as tmp, open(tmp, "wb") as fh:
        fh.write(shb + idb)
        for ts, frame in sorted(frames, key=lambda x: x[0]):
            fh.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                          len(frame)) + frame))
