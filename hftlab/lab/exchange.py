"""hftlab.lab.exchange: the exchange simulator around a system under test.

* :func:`pack_feed` turns an ITCH file into MoldUDP64 datagrams with the C
  packer the golden model uses (so sequence numbers agree).
* :class:`Replayer` sends them to the SUT at a message rate (or back to back)
  from C (hftlab/csrc/exchange.c): the loop sleeps until a few microseconds
  before each send and spins only for that rest.
* :class:`OrderSink` receives the SUT's OUCH orders in C, each with its kernel
  receive timestamp.

Both C loops release the GIL, so they run in threads beside each other.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import threading
from dataclasses import dataclass

import numpy as np

from hftlab._core import ffi as _ffi, lib as _lib
from hftlab.model.core import GOLDEN_SESSION, frame_error, MappedFile
from hftlab.errors import ConfigError, RunError

__all__ = ["Endpoint", "Feed", "pack_feed", "Replayer", "OrderSink", "udp_socket", "control_message",
           "schedule"]


@dataclass(frozen=True)
class Endpoint:
    """One end of a UDP flow: MAC, IPv4 address, port."""

    mac: str
    ip: str
    port: int

    def cdata(self):
        e = _ffi.new("struct net_endpoint *")
        _ffi.memmove(e.mac, bytes(int(x, 16) for x in self.mac.split(":")), 6)
        e.ip, e.port = int(ipaddress.IPv4Address(self.ip)), self.port
        return e


@dataclass
class Feed:
    """MoldUDP64 datagrams: datagram i is data[offsets[i]:offsets[i+1]]."""

    data: np.ndarray  #: uint8
    offsets: np.ndarray  #: uint64, n + 1
    counts: np.ndarray  #: uint16, messages per datagram
    first_seq: int
    session: bytes

    @property
    def n_packets(self) -> int:
        return len(self.counts)

    @property
    def n_messages(self) -> int:
        return int(self.counts.sum())

    def packet(self, i: int) -> bytes:
        return self.data[self.offsets[i]: self.offsets[i + 1]].tobytes()

    def frames(self, src: Endpoint, dst: Endpoint) -> "Feed":
        """The same datagrams as Ethernet/IPv4/UDP frames from src to dst
        (built by the core's net_build_udp), for a link without a kernel."""
        n = self.n_packets
        out = np.empty(len(self.data) + n * 60, np.uint8)
        offs = np.empty(n + 1, np.uint64)
        _lib.hc_frame_feed(_ffi.cast("uint8_t *", self.data.ctypes.data),
                           _ffi.cast("uint64_t *", self.offsets.ctypes.data), n, src.cdata(),
                           dst.cdata(), _ffi.cast("uint8_t *", out.ctypes.data),
                           _ffi.cast("uint64_t *", offs.ctypes.data))
        return Feed(data=out[: int(offs[n])].copy(), offsets=offs, counts=self.counts,
                    first_seq=self.first_seq, session=self.session)

    def select(self, indices) -> "Feed":
        """The datagrams at `indices`, in that order: repeat one to send a
        duplicate, leave one out to make a gap."""
        parts = [self.packet(int(i)) for i in indices]
        offs = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.uint64)
        data = np.frombuffer(b"".join(parts), np.uint8).copy()
        return Feed(data=data, offsets=offs, counts=self.counts[np.asarray(indices, int)].copy(),
                    first_seq=self.first_seq, session=self.session)


def pack_feed(path: str | os.PathLike[str], *, messages: int | None = None,
              max_payload: int = 1400, max_count: int = 64,
              session: bytes = GOLDEN_SESSION, first_seq: int = 1) -> Feed:
    """Pack an ITCH file into MoldUDP64 datagrams of at most ``max_payload``
    bytes and ``max_count`` messages."""
    if len(session) != 10:
        raise ConfigError("a MoldUDP64 session is 10 bytes")
    if not 64 <= max_payload <= 65507 or not 1 <= max_count <= 0xFFFE:
        raise ConfigError("max_payload must be in [64, 65507] and max_count in [1, 65534]")
    with MappedFile(path) as mf:
        est = max(16, mf.size // 20 + 16)
        cap = mf.size + 22 * est + 65536 * 2
        data = np.empty(cap, np.uint8)
        offsets = np.empty(est + 1, np.uint64)
        counts = np.empty(est, np.uint16)
        out = _ffi.new("struct hc_packets *", {
            "data": _ffi.cast("uint8_t *", data.ctypes.data), "cap": cap,
            "offsets": _ffi.cast("uint64_t *", offsets.ctypes.data),
            "counts": _ffi.cast("uint16_t *", counts.ctypes.data), "max": est})
        sess = _ffi.new("uint8_t[10]", session)
        res = _lib.hc_pack_file(mf.ptr, mf.size, 0, messages or 0, max_payload, max_count,
                                sess, first_seq, out)
        if res.status in (_lib.ITCH_FRAME_TRUNCATED, _lib.ITCH_FRAME_UNFRAMED):
            raise frame_error(mf.path, res.status, res.offset)
        if res.status == _lib.HC_NEED_SPACE or (out.n == est and res.status == _lib.ITCH_FRAME_OK
                                                 and messages is None):
            raise RunError(f"{path}: packing buffer estimate too small (internal error)")
        n = int(out.n)
    return Feed(data=data[: int(offsets[n])].copy(), offsets=offsets[: n + 1].copy(),
                counts=counts[:n].copy(), first_seq=first_seq, session=session)


def schedule(feed: Feed, rate: float | None) -> np.ndarray | None:
    """Due time (ns after start) of each datagram for a message rate in
    messages per second; None means back to back."""
    if rate is None or rate <= 0:
        return None
    before = np.concatenate(([0], np.cumsum(feed.counts[:-1], dtype=np.float64)))
    return (before * (1e9 / rate)).astype(np.uint64)


def udp_socket(netns: str | None, bind_ip: str = "0.0.0.0", port: int = 0,
               bufsize: int = 8 << 20) -> socket.socket:
    """A UDP socket opened inside network namespace ``netns`` (None: here)."""
    err = _ffi.new("char[256]")
    path = _ffi.new("char[]", f"/var/run/netns/{netns}".encode()) if netns else _ffi.NULL
    fd = _lib.hx_udp_socket(path, int(ipaddress.IPv4Address(bind_ip)), port, bufsize, err, 256)
    if fd < 0:
        raise RunError(_ffi.string(err).decode())
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, fileno=fd)


def raw_socket(netns: str | None, ifname: str) -> socket.socket:
    """An AF_PACKET socket on `ifname` inside `netns`, for hand-made frames."""
    err = _ffi.new("char[256]")
    path = _ffi.new("char[]", f"/var/run/netns/{netns}".encode()) if netns else _ffi.NULL
    fd = _lib.hx_netns_socket(path, socket.AF_PACKET, socket.SOCK_RAW, 0, err, 256)
    if fd < 0:
        raise RunError(_ffi.string(err).decode())
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0, fileno=fd)
    s.bind((ifname, 0))
    return s


def hostile_frames(host: Endpoint, guest: Endpoint, session: bytes) -> list[tuple[str, bytes]]:
    """Frames a feed handler must survive, each paired with its name. None
    of them may produce an order; each lands in a counter of the SUT."""
    mold_ok = struct.pack(">10sQH", session, 1, 1) + struct.pack(">H", 12) + b"S" + bytes(10) + b"O"
    one = Feed(np.frombuffer(mold_ok, np.uint8).copy(), np.array([0, len(mold_ok)], np.uint64),
               np.array([1], np.uint16), 1, session)
    good = bytearray(one.frames(host, guest).packet(0))
    out = []
    f = bytearray(good)
    f[12:14] = b"\x88\xb5"  # IEEE local experimental ethertype
    out.append(("wrong_ethertype", bytes(f)))
    f = bytearray(good)
    f[24] ^= 0xFF  # IPv4 header checksum
    out.append(("bad_ip_checksum", bytes(f)))
    f = bytearray(good)
    struct.pack_into(">H", f, 38, 400)  # UDP length beyond the IP payload
    out.append(("truncated_udp", bytes(f)))
    wrong = Endpoint(guest.mac, guest.ip, guest.port + 97)
    out.append(("wrong_port", one.frames(host, wrong).packet(0)))
    bad_count = struct.pack(">10sQH", session, 1, 40) + mold_ok[20:]  # 40 blocks announced, 1 there
    bc = Feed(np.frombuffer(bad_count, np.uint8).copy(), np.array([0, len(bad_count)], np.uint64),
              np.array([1], np.uint16), 1, session)
    out.append(("mold_truncated", bc.frames(host, guest).packet(0)))
    out.append(("oversized", bytes(good) + bytes(2000)))
    return out


def control_message(cmd: int, key: int) -> bytes:
    """struct hftos_ctl (kernel_src/include/hftos_abi.h)."""
    return struct.pack("<IIQ", 0x4C544348, cmd, key)


class _CLoop(threading.Thread):
    """A C loop (hx_replay_run, hx_sink_run) on its own thread: pinned to
    `cpus` when set (off the SUT's core), stopped through a flag it polls,
    its failure kept as `error`."""

    verb = "run"

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_flag = _ffi.new("volatile int *")
        self.error: str | None = None
        self.cpus: set[int] | None = None  #: run on these CPUs (off the SUT's core)

    def _loop(self) -> tuple[int, int]:
        """Run the C loop: (return code, errno)."""
        raise NotImplementedError

    def run(self) -> None:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)  # this thread only
        rc, err = self._loop()
        if rc != 0:
            self.error = f"{self.verb} failed: {os.strerror(err)}"

    def cancel(self) -> None:
        self._stop_flag[0] = 1


class Replayer(_CLoop):
    """Send a Feed from `sock` to `dst` in a C loop: `dst` is (ip, port) for a
    UDP socket, or a path for a unix datagram socket (then the feed holds
    whole Ethernet frames, see Feed.frames)."""

    verb = "send"

    def __init__(self, sock: socket.socket, feed: Feed, dst: tuple[str, int] | str, *,
                 rate: float | None = None, spin_ns: int = 20_000) -> None:
        super().__init__("hftlab-replayer")
        self.sock, self.feed = sock, feed
        sock.connect(dst)
        self.sent_ns = np.zeros(feed.n_packets, np.int64)
        self._due = schedule(feed, rate)
        self._r = _ffi.new("struct hx_replay *", {
            "fd": sock.fileno(), "data": _ffi.cast("uint8_t *", feed.data.ctypes.data),
            "offsets": _ffi.cast("uint64_t *", feed.offsets.ctypes.data), "n": feed.n_packets,
            "due_ns": _ffi.cast("uint64_t *", self._due.ctypes.data) if self._due is not None
            else _ffi.NULL,
            "spin_ns": spin_ns, "sent_ns": _ffi.cast("int64_t *", self.sent_ns.ctypes.data),
            "stop": self._stop_flag})

    def _loop(self) -> tuple[int, int]:
        return _lib.hx_replay_run(self._r), self._r.err

    @property
    def sent(self) -> int:
        return int(self._r.sent)

    @property
    def late_ns_max(self) -> int:
        return int(self._r.late_ns_max)


class OrderSink(_CLoop):
    """Receive datagrams on `sock` until stopped."""

    verb = "receive"

    def __init__(self, sock: socket.socket, max_orders: int = 1 << 20) -> None:
        super().__init__("hftlab-sink")
        self.sock = sock
        self.buf = np.empty(max_orders * 64, np.uint8)
        self.offsets = np.zeros(max_orders + 1, np.uint64)
        self.rx_ns = np.zeros(max_orders, np.int64)
        self.src_ip = np.zeros(max_orders, np.uint32)
        self._s = _ffi.new("struct hx_sink *", {
            "fd": sock.fileno(), "buf": _ffi.cast("uint8_t *", self.buf.ctypes.data),
            "buf_cap": len(self.buf), "offsets": _ffi.cast("uint64_t *", self.offsets.ctypes.data),
            "rx_ns": _ffi.cast("int64_t *", self.rx_ns.ctypes.data),
            "src_ip": _ffi.cast("uint32_t *", self.src_ip.ctypes.data), "max": max_orders,
            "poll_ms": 20, "stop": self._stop_flag})

    def _loop(self) -> tuple[int, int]:
        return _lib.hx_sink_run(self._s), self._s.err

    @property
    def count(self) -> int:
        return int(self._s.n)

    def payloads(self) -> list[bytes]:
        n = self.count
        return [self.buf[self.offsets[i]: self.offsets[i + 1]].tobytes() for i in range(n)]
