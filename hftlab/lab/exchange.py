"""hftlab.lab.exchange: the exchange simulator around a system under test.

* :func:`pack_feed` turns an ITCH file into MoldUDP64 datagrams with the C
  packer the golden model uses (so sequence numbers agree).
* :class:`Pacing` says when each datagram is due: at a message rate, at the
  feed's own ITCH timestamps time-scaled (recorded), in bursts of N
  datagrams every T, or back to back (max); :func:`capture_feed` takes the
  MoldUDP64 datagrams of a pcap/pcapng and their recorded times instead.
* :class:`Replayer` sends them to the SUT on that schedule from C
  (hftlab/csrc/exchange.c): the loop sleeps until a few microseconds before
  each send and spins only for that rest.
* :func:`pacing_table` and :func:`pacing_summary`: each datagram's due,
  send and wire time (replay.parquet) and the pacing error's percentiles.
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
import pyarrow as pa

from hftlab._core import ffi as _ffi, lib as _lib
from hftlab.model.core import GOLDEN_SESSION, frame_error, MappedFile
from hftlab.errors import ConfigError, DataError, RunError
from hftlab.lab.net import TAP_TXQUEUELEN

__all__ = ["Endpoint", "Feed", "pack_feed", "Replayer", "OrderSink", "udp_socket", "control_message",
           "schedule", "Pacing", "PACE_MODES", "recorded_times", "capture_feed", "datagram_seqs",
           "pacing_table", "pacing_summary", "LATE_NS"]


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
    #: when each datagram is due, ns after the start (Pacing.due); None: back to back
    due_ns: np.ndarray | None = None

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
                    first_seq=self.first_seq, session=self.session, due_ns=self.due_ns)

    def select(self, indices) -> "Feed":
        """The datagrams at `indices`, in that order: repeat one to send a
        duplicate, leave one out to make a gap. The schedule is not kept."""
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


PACE_MODES = ("rate", "recorded", "burst", "max")
LATE_NS = 10_000  #: a datagram on the wire more than this after its due time is late
#: a recorded schedule longer than this is refused (RITCH spans 16 h: --speed)
MAX_RECORDED_S = 6 * 3600.0


@dataclass(frozen=True)
class Pacing:
    """When each datagram is due.

    * ``rate``: ``rate`` ITCH messages per second (a datagram of k messages
      takes k / rate of the schedule);
    * ``recorded``: the feed's own times, divided by ``speed``: the ITCH
      timestamp of each datagram's last message (the exchange could not
      have sent it earlier), or a capture's packet times (:func:`capture_feed`);
    * ``burst``: ``burst`` datagrams back to back every ``every_s`` seconds;
    * ``max``: back to back, as fast as the link takes them.
    """

    mode: str = "rate"
    rate: float | None = 20_000.0
    speed: float = 1.0
    burst: int | None = None
    every_s: float | None = None

    def validate(self, tx_ring: int = TAP_TXQUEUELEN) -> None:
        if self.mode not in PACE_MODES:
            raise ConfigError(f"pace {self.mode!r}: one of {', '.join(PACE_MODES)}")
        if self.mode == "rate" and (self.rate is None or not self.rate > 0):
            raise ConfigError(f"pace rate needs a rate > 0 messages/s (got {self.rate or 0}); "
                              "pace max sends back to back")
        if not (isinstance(self.speed, (int, float)) and self.speed > 0 and np.isfinite(self.speed)):
            raise ConfigError(f"speed {self.speed}: must be > 0 (2 replays twice as fast as recorded)")
        if self.mode != "recorded" and self.speed != 1.0:
            raise ConfigError(f"speed applies to pace recorded (the pace is {self.mode})")
        if self.mode == "burst":
            if self.burst is None or self.every_s is None:
                raise ConfigError("pace burst needs burst N (datagrams per burst) and every T (seconds)")
            if self.burst < 1 or not self.every_s > 0:
                raise ConfigError(f"burst {self.burst} every {self.every_s} s: burst >= 1 datagram, "
                                  "every > 0 s")
            if self.burst > tx_ring:
                raise ConfigError(f"burst {self.burst} datagrams is larger than the TX ring they are "
                                  f"sent into (the tap's queue, {tx_ring} frames): the rest would be "
                                  "dropped before the SUT sees them")
        elif self.burst is not None or self.every_s is not None:
            raise ConfigError(f"burst and every apply to pace burst (the pace is {self.mode})")

    def due(self, feed: Feed, recorded_ns: np.ndarray | None = None) -> np.ndarray | None:
        """Due time (ns after the start) of each datagram of `feed`; None:
        back to back. `recorded_ns`: the datagrams' recorded times (pace
        recorded), any origin, never decreasing."""
        self.validate()
        if self.mode == "max":
            return None
        if self.mode == "rate":
            return schedule(feed, self.rate)
        if self.mode == "burst":
            i = np.arange(feed.n_packets, dtype=np.int64)
            return ((i // self.burst).astype(np.float64) * (self.every_s * 1e9)).astype(np.uint64)
        if recorded_ns is None or len(recorded_ns) != feed.n_packets:
            raise ConfigError("pace recorded needs the recorded time of every datagram")
        r = np.asarray(recorded_ns, np.int64)
        rel = (r - r[0]).astype(np.float64) / self.speed
        if len(rel) and rel[-1] > MAX_RECORDED_S * 1e9:
            raise ConfigError(f"pace recorded at speed {self.speed:g} would take {rel[-1] / 3.6e12:.1f} h "
                              f"(the feed spans {(r[-1] - r[0]) / 3.6e12:.1f} h); pass a larger speed "
                              f"(e.g. {np.ceil((r[-1] - r[0]) / 1e9 / 10):.0f} replays it in ~10 s)")
        return rel.astype(np.uint64)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "rate_msgs_per_s": self.rate if self.mode == "rate" else None,
                "speed": self.speed if self.mode == "recorded" else None,
                "burst": self.burst, "every_s": self.every_s}


def recorded_times(feed: Feed, path: str | os.PathLike[str], messages: int | None = None) -> np.ndarray:
    """The ITCH timestamp (ns since midnight) of each datagram's last message,
    for a feed packed from `path` by :func:`pack_feed`. A timestamp smaller
    than the one before is a DataError naming the message."""
    from hftlab.model.core import read_itch  # the decoder loads only for recorded pacing

    ts = read_itch(path, messages=messages).column("timestamp_ns").to_numpy().astype(np.int64)
    back = np.flatnonzero(np.diff(ts) < 0)
    if len(back):
        k = int(back[0]) + 1
        raise DataError(path, None, f"ITCH timestamps go backwards at message {k + 1} (sequence "
                        f"{feed.first_seq + k}): {ts[k]} ns after {ts[k - 1]} ns "
                        f"({len(back)} step(s) back in all); pace recorded needs a time-ordered feed")
    last = np.cumsum(feed.counts.astype(np.int64)) - 1
    if len(last) and last[-1] >= len(ts):
        raise RunError(f"{path}: {len(ts)} messages decoded, the feed holds {last[-1] + 1}")
    return ts[np.maximum(last, 0)]


def capture_feed(path: str | os.PathLike[str]) -> tuple[Feed, np.ndarray, dict]:
    """The MoldUDP64 datagrams of a pcap/pcapng capture (hftlab.capture), in
    capture order, with their capture times (ns since the epoch) and a note of
    what was taken. Only the busiest MoldUDP64 destination port is taken (a
    run's wire.pcapng also holds its orders). No MoldUDP64 datagram, or
    capture times that go backwards: a DataError."""
    from hftlab import capture

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ConfigError(f"replay capture {p} does not exist")
    pk, dgrams = capture.mold_datagrams(p)
    if not dgrams:
        n = capture.read(p, payloads=False).packets.num_rows
        raise DataError(p, None, f"no MoldUDP64 datagram among its {n} packets: nothing to replay "
                        "(--replay takes a capture of a MoldUDP64 feed, e.g. captures/moldudp64/ "
                        "or a run's wire.pcapng)")
    port = pk.column("dst_port").to_numpy(zero_copy_only=False)
    ports, n_port = np.unique(port, return_counts=True)
    best = int(ports[np.argmax(n_port)])
    keep = np.flatnonzero(port == best)
    ts = pk.column("ts_ns").to_numpy(zero_copy_only=False)[keep].astype(np.int64)
    back = np.flatnonzero(np.diff(ts) < 0)
    if len(back):
        k = int(back[0]) + 1
        raise DataError(p, None, f"capture times go backwards at MoldUDP64 packet {k + 1} "
                        f"(packet_index {int(pk.column('packet_index')[int(keep[k])].as_py())}): "
                        f"{ts[k]} after {ts[k - 1]} ns; their spacing cannot be replayed")
    parts = [dgrams[int(i)] for i in keep]
    offs = np.concatenate(([0], np.cumsum([len(d) for d in parts]))).astype(np.uint64)
    counts = pk.column("mold_count").to_numpy(zero_copy_only=False)[keep].astype(np.int64)
    counts = np.where(counts == 0xFFFF, 0, counts).astype(np.uint16)  # end of session: no message
    first = struct.unpack(">10sQ", parts[0][:18])
    feed = Feed(data=np.frombuffer(b"".join(parts), np.uint8).copy(), offsets=offs, counts=counts,
                first_seq=int(first[1]), session=first[0])
    note = {"capture": p, "datagrams": len(parts), "messages": int(counts.sum()),
            "dst_port": best, "other_mold_packets": int(len(port) - len(keep)),
            "sessions": sorted(set(pk.column("mold_session").to_pylist()))}
    return feed, ts, note


def datagram_seqs(feed: Feed) -> tuple[np.ndarray, np.ndarray]:
    """First and last MoldUDP64 sequence number of each datagram (from its
    header; a heartbeat's last is its first minus one)."""
    starts = feed.offsets[:-1].astype(np.int64)
    hdr = feed.data[(starts[:, None] + np.arange(10, 20)).reshape(-1)].reshape(-1, 10)
    first = hdr[:, :8].copy().view(">u8").reshape(-1).astype(np.uint64)
    count = hdr[:, 8:10].copy().view(">u2").reshape(-1).astype(np.int64)
    count = np.where(count == 0xFFFF, 0, count)
    return first, (first.astype(np.int64) + count - 1).astype(np.int64)


def pacing_table(feed: Feed, due_ns: np.ndarray | None, t0_real_ns: int, sent_ns: np.ndarray,
                 wire_ns: np.ndarray | None) -> pa.Table:
    """replay.parquet: one row per datagram sent, with its due time (wall
    clock: the schedule's zero is t0_real_ns), the time the replayer saw
    its send return, the capture's time of it on the wire, and the errors."""
    n = len(sent_ns)
    first, last = datagram_seqs(feed)
    due = (t0_real_ns + due_ns[:n].astype(np.int64)) if due_ns is not None else None
    wire = None if wire_ns is None else np.asarray(wire_ns, np.int64)[:n]

    def col(v):
        return pa.array(v, pa.int64()) if v is not None else pa.nulls(n, pa.int64())

    return pa.table({
        "datagram": pa.array(np.arange(n), pa.int64()),
        "first_seq": pa.array(first[:n], pa.uint64()), "last_seq": pa.array(last[:n], pa.int64()),
        "messages": pa.array(feed.counts[:n], pa.uint16()),
        "due_ns": col(due), "sent_ns": col(np.asarray(sent_ns, np.int64)), "wire_ns": col(wire),
        "send_error_ns": col(None if due is None else np.asarray(sent_ns, np.int64) - due),
        "wire_error_ns": col(None if due is None or wire is None else wire - due),
    })


def pacing_summary(table: pa.Table, pacing: Pacing) -> dict:
    """run.json's "pacing": the wire error (wire time - due time; the send
    error where the run had no capture) as p50/p99/p99.9/max of its size,
    the count late by more than LATE_NS, the load asked and got, and a
    warning for each way the load was not what was asked."""
    out: dict = {**pacing.to_dict(), "datagrams": table.num_rows,
                 "messages": int(pa.compute.sum(table.column("messages")).as_py() or 0)}
    sent = table.column("sent_ns").to_numpy(zero_copy_only=False)
    wire_col = table.column("wire_ns")
    has_wire = table.num_rows and wire_col.null_count == 0
    times = wire_col.to_numpy(zero_copy_only=False) if has_wire else sent
    span = float(times[-1] - times[0]) / 1e9 if len(times) > 1 else 0.0
    out["span_s"] = round(span, 6)
    out["achieved_msgs_per_s"] = round(out["messages"] / span, 1) if span > 0 else None
    warnings: list[str] = []
    err_col = "wire_error_ns" if has_wire else "send_error_ns"
    out["error_of"] = "wire" if has_wire else "send"
    if table.num_rows and table.column("due_ns").null_count == 0:
        e = table.column(err_col).to_numpy(zero_copy_only=False).astype(np.int64)
        if pacing.mode == "burst":
            # a burst is due at once: its k-th datagram cannot leave before the k-1 ahead of
            # it, so the error is its first datagram's; the burst's length on the wire apart
            due_all = table.column("due_ns").to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.concatenate(([True], np.diff(due_all) != 0)))
            ends = np.concatenate((starts[1:], [len(due_all)])) - 1
            t = times.astype(np.int64)
            spread = t[ends] - t[starts]
            out["burst_span_ns"] = {"p50": int(np.percentile(spread, 50)), "max": int(spread.max()),
                                    "bursts": int(len(starts))}
            e = e[starts]
            out["error_over"] = "the first datagram of each burst"
        a = np.abs(e)
        out["error_ns"] = {"p50": int(np.percentile(a, 50)), "p99": int(np.percentile(a, 99)),
                           "p99.9": int(np.percentile(a, 99.9)), "max": int(a.max()),
                           "mean_signed": round(float(e.mean()), 1)}
        out["late"] = int((e > LATE_NS).sum())
        out["late_threshold_ns"] = LATE_NS
        due = table.column("due_ns").to_numpy(zero_copy_only=False)
        planned = float(due[-1] - due[0]) / 1e9 if len(due) > 1 else 0.0
        out["planned_span_s"] = round(planned, 6)
        frac = out["late"] / len(e)
        if frac > 0.01:
            warnings.append(f"{out['late']} of {len(e)} datagrams ({100 * frac:.1f}%) reached "
                            f"the wire more than {LATE_NS / 1000:.0f} us after their due time "
                            f"(p99 {out['error_ns']['p99'] / 1000:.1f} us, "
                            f"max {a.max() / 1000:.1f} us): the load was burstier than asked")
        if planned > 0.01 and span > planned * 1.05:
            warnings.append(f"the feed took {span:.3f} s on the wire against {planned:.3f} s planned "
                            f"({span / planned:.2f}x): the replayer could not keep up")
    else:
        out["error_ns"], out["late"] = None, None
    out["warnings"] = warnings
    return out


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
    whole Ethernet frames, see Feed.frames).

    On schedule (`due_ns`, or `rate`): sleep until the spin before each due
    time, then spin. The spin adapts (spin_max_ns > spin_ns) to how late
    the sleep wakes here, and the thread runs SCHED_FIFO at `rt_prio` (0,
    the default: not): on this 2-core box under load a SCHED_OTHER sleeper
    woke p50 0.3 ms / p99 10 ms late, a SCHED_FIFO one p50 36 us / p99 97 us
    (a C probe of clock_nanosleep, 200 us sleeps, load average 8; the
    figures with the SUT: README "Pacing and capture replay"), but a
    SCHED_FIFO replayer starves QEMU's I/O thread on the core they share
    and the tap drops frames at one message per datagram (RunSpec.replay_rt_prio).
    `start_delay_ns`: due time 0 is that long after the loop starts."""

    verb = "send"

    def __init__(self, sock: socket.socket, feed: Feed, dst: tuple[str, int] | str, *,
                 rate: float | None = None, due_ns: np.ndarray | None = None,
                 spin_ns: int = 10_000, spin_max_ns: int = 200_000, rt_prio: int = 0,
                 start_delay_ns: int = 1_000_000) -> None:
        super().__init__("hftlab-replayer")
        self.sock, self.feed = sock, feed
        sock.connect(dst)
        self.sent_ns = np.zeros(feed.n_packets, np.int64)
        if due_ns is not None and rate is not None:
            raise ConfigError("Replayer: rate or due_ns, not both")
        self._due = (np.ascontiguousarray(due_ns, np.uint64) if due_ns is not None
                     else schedule(feed, rate))
        self._r = _ffi.new("struct hx_replay *", {
            "fd": sock.fileno(), "data": _ffi.cast("uint8_t *", feed.data.ctypes.data),
            "offsets": _ffi.cast("uint64_t *", feed.offsets.ctypes.data), "n": feed.n_packets,
            "due_ns": _ffi.cast("uint64_t *", self._due.ctypes.data) if self._due is not None
            else _ffi.NULL,
            "spin_ns": spin_ns, "spin_min_ns": spin_ns, "spin_max_ns": spin_max_ns,
            "start_delay_ns": start_delay_ns, "rt_prio": rt_prio,
            "sent_ns": _ffi.cast("int64_t *", self.sent_ns.ctypes.data), "stop": self._stop_flag})

    def _loop(self) -> tuple[int, int]:
        return _lib.hx_replay_run(self._r), self._r.err

    @property
    def sent(self) -> int:
        return int(self._r.sent)

    @property
    def late_ns_max(self) -> int:
        return int(self._r.late_ns_max)

    @property
    def due_ns(self) -> np.ndarray | None:
        """The schedule (ns after t0_real_ns), None: back to back."""
        return self._due

    @property
    def t0_real_ns(self) -> int:
        """Due time 0 on CLOCK_REALTIME, the capture's clock."""
        return int(self._r.t0_real_ns)

    @property
    def spin_ns(self) -> int:
        """The spin before a due time at the end (adaptive: where it settled)."""
        return int(self._r.spin_ns)

    @property
    def oversleep_q_ns(self) -> int:
        return int(self._r.oversleep_q_ns)

    @property
    def backoffs(self) -> int:
        return int(self._r.backoffs)

    @property
    def realtime(self) -> bool:
        """Whether the loop ran SCHED_FIFO."""
        return bool(self._r.rt)


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
