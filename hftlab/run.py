"""hftlab.run: one experiment end to end, into a run directory.

    build image -> patch config -> netns + tap -> dumpcap -> QEMU -> ready
    -> replay MoldUDP64 + collect OUCH -> STOP -> dump -> exit status
    -> sut_log.arrow, orders.parquet, latency.parquet, run.json

Every resource is released on every path (success, error, timeout, Ctrl-C)
by nested context managers; run.json is written at the start with status
"running" and rewritten at the end with "ok" or "failed" and the error. A
run whose orders differ from the golden model is a failed run.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from . import core, exchange, hiccups, latency, sutlog
from ._env import environment
from ._io import AtomicPath, write_parquet
from .build import ROOT, OsParams, build_os, sha256, write_image
from .errors import ConfigError, HftlabError, RunError
from .net import Capture, RunNetwork
from .vm import Vm, VmSpec, choose_accel, qemu_version

__all__ = ["RunSpec", "RunResult", "run", "DEFAULT_DATASET", "SUTS"]

DEFAULT_DATASET = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"
SUTS = ("hftos", "linux-socket", "linux-packet", "linux-dpdk")  #: linux-*: hftlab.baselines
READY = b"HFTOS READY"
HICCUPS_DONE = b"HICCUPS DONE"  #: the gap recorder is over: the feed may start


@dataclass
class RunSpec:
    sut: str = "hftos"
    accel: str = "auto"
    nic: str = "e1000"
    dataset: Path = DEFAULT_DATASET
    messages: int | None = None
    rate: float | None = 20_000.0  #: ITCH messages per second; None: as fast as the link takes
    out: Path | None = None  #: run directory; default runs/<id>
    config: core.EngineConfig = field(default_factory=core.EngineConfig.default)
    max_payload: int = 1400
    max_count: int = 64
    boot_timeout: float = 60.0
    drain_timeout: float = 30.0
    fault: bool = False  #: make the OS fault on purpose (tests)
    network: str = "auto"  #: tap (root), dgram (no root), auto: tap when root
    hostile: bool = False  #: inject hostile frames, a duplicate and a gap (tests)
    vcpu_core: int | None = 1
    where: str = "guest"  #: baselines: "guest" (under QEMU, like HFT-OS) or "host" (netns)
    baseline_args: tuple[str, ...] = ()  #: extra options for a baseline (e.g. "--busy-poll", "0")
    hiccups_s: float = 0.0  #: poll-loop gap recorder on the SUT's core after READY (0: off)
    hiccup_threshold_ns: int = 1000  #: gaps longer than this are hiccups
    #: Linux guest vCPUs: 2 (default, a tuned Linux: CPU 1 isolated for the
    #: baseline with isolcpus, nohz_full, rcu_nocbs, interrupts on CPU 0,
    #: whose vCPU shares the host core of QEMU's I/O thread), or 1 (the
    #: baseline shares its one vCPU with the guest kernel, as nothing shares
    #: HFT-OS's). Either way the SUT's vCPU alone has the SUT's host core.
    guest_cpus: int = 2

    def validate(self) -> None:
        if self.sut not in SUTS:
            raise ConfigError(f"sut {self.sut!r}: available: {', '.join(SUTS)}")
        if self.where not in ("guest", "host") or (self.sut == "hftos" and self.where != "guest"):
            raise ConfigError(f"where {self.where!r}: guest or host (host only for baselines)")
        if self.nic != "e1000":
            raise ConfigError(f"nic {self.nic!r}: HFT-OS drives e1000 (82540EM) so far")
        if not Path(self.dataset).is_file():
            raise ConfigError(f"dataset {self.dataset} does not exist")
        if self.network not in ("auto", "tap", "dgram"):
            raise ConfigError(f"network {self.network!r}: auto, tap or dgram")
        if not 0 <= self.hiccups_s <= 60 or self.hiccup_threshold_ns < 1:
            raise ConfigError("hiccups_s must be in [0, 60] s and hiccup_threshold_ns >= 1")
        if self.guest_cpus not in (1, 2):
            raise ConfigError(f"guest_cpus {self.guest_cpus}: 1, or 2 (one isolated for the baseline)")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError("rate must be > 0 messages/s (or None for back to back)")
        self.config.validate()


@dataclass
class RunResult:
    run_dir: Path
    status: str
    info: dict[str, Any]
    latency: pa.Table | None = None
    report: Path | None = None

    def summary(self) -> dict[str, dict]:
        if self.latency is None:
            return {}
        out = {}
        for col in ("wire_ns", "internal_ns", "internal_cycles"):
            v = self.latency.column(col).drop_null().to_numpy()
            out[col] = latency.percentiles(v)
        return out


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _environment() -> dict[str, Any]:
    return environment() | {"qemu": qemu_version()}


def _write_json(path: Path, info: dict) -> None:
    with AtomicPath(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")


def _write_arrow(table: pa.Table, path: Path, meta: dict[str, str]) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in meta.items()}})
    with AtomicPath(path) as tmp:
        with ipc.new_file(tmp, table.schema) as w:
            w.write_table(table)


def _wire_events(pcap: Path, md_port: int, order_port: int):
    """Tick datagrams and order frames from the capture."""
    from . import capture

    cap = capture.read(pcap)
    pk = cap.packets
    mold = pk.filter(pa.compute.equal(pk.column("dst_port"), md_port))
    mold = mold.filter(pa.compute.is_valid(mold.column("mold_seq")))
    ticks = latency.WireTicks(ts_ns=mold.column("ts_ns").to_numpy(),
                              first_seq=mold.column("mold_seq").to_numpy().astype(np.uint64),
                              count=mold.column("mold_count").to_numpy().astype(np.uint16))
    o = cap.ouch
    o = o.join(pk.select(["packet_index", "dst_port"]), "packet_index")
    o = o.filter(pa.compute.equal(o.column("dst_port"), order_port)).sort_by("packet_index")
    orders = latency.WireOrders(ts_ns=o.column("ts_ns").to_numpy(),
                                token=o.column("token").to_pylist())
    return ticks, orders, cap


def run(spec: RunSpec, *, progress: Callable[[str, float], None] | None = None) -> RunResult:
    """Run one experiment. `progress(stage, fraction)` is called as it goes."""
    spec.validate()
    say = progress or (lambda stage, frac: None)
    run_id = _run_id()
    run_dir = Path(spec.out) if spec.out else ROOT / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    accel = choose_accel(spec.accel)
    golden = core.golden(spec.dataset, spec.config, messages=spec.messages)
    info: dict[str, Any] = {
        "run_id": run_id, "status": "running",
        "spec": {"sut": spec.sut, "accel": accel.name, "accel_requested": spec.accel,
                 "accel_reason": accel.reason, "where": spec.where, "nic": spec.nic,
                 "dataset": str(spec.dataset),
                 "dataset_sha256": sha256(Path(spec.dataset)), "messages": spec.messages,
                 "rate_msgs_per_s": spec.rate, "config": spec.config.to_dict(),
                 "max_payload": spec.max_payload, "max_count": spec.max_count,
                 "hiccups_s": spec.hiccups_s, "hiccup_threshold_ns": spec.hiccup_threshold_ns},
        "environment": _environment(), "phases_s": {}, "capture": {"tool": "dumpcap", "link": "tap"},
    }
    _write_json(run_dir / "run.json", info)
    phases = info["phases_s"]
    t0 = time.monotonic()
    try:
        say("build", 0.0)
        img = build_os() if spec.sut == "hftos" else None  # baselines build their own
        phases["build"] = round(time.monotonic() - t0, 3)
        result = _execute(spec, run_dir, img, accel, golden, info, say)
        info["status"] = "ok"
        phases["total"] = round(time.monotonic() - t0, 3)
        _write_json(run_dir / "run.json", info)
        say("report", 1.0)
        from .report import run_report

        result.report = run_report(run_dir)
        return result
    except (HftlabError, KeyboardInterrupt) as exc:
        info["status"] = "failed"
        info["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        phases["total"] = round(time.monotonic() - t0, 3)
        _write_json(run_dir / "run.json", info)


def _execute(spec: RunSpec, run_dir: Path, img: Path, accel, golden: core.GoldenResult,
             info: dict, say) -> RunResult:
    feed = exchange.pack_feed(spec.dataset, messages=spec.messages, max_payload=spec.max_payload,
                              max_count=spec.max_count)
    if spec.hostile:
        # a duplicate of datagram 5 right after it, and datagram 10 never sent
        n = feed.n_packets
        order = [i for i in range(n) if i != min(10, n - 1)]
        order.insert(min(6, len(order)), min(5, n - 1))
        feed = feed.select(order)
    mode = spec.network if spec.network != "auto" else ("tap" if os.geteuid() == 0 else "dgram")
    run_fn = _run_tap if mode == "tap" else _run_dgram
    info["capture"] = ({"tool": "dumpcap", "link": "tap in a network namespace"} if mode == "tap"
                       else {"tool": "hftlab (replayer send and receive times)",
                             "link": "QEMU dgram netdev on unix sockets (no root: no tap)"})
    if spec.hostile:
        golden = _golden_of_datagrams(spec, [_udp_payload(f) for _, f in _hostile(feed, GUEST_MAC)
                                             if _ in ("mold_truncated",)]
                                      + [feed.packet(i) for i in range(feed.n_packets)])
    if spec.sut != "hftos":  # a Linux baseline, on the host or in a guest
        from . import baselines

        return baselines.execute(spec, run_dir, accel, golden, info, say, feed)
    return run_fn(spec, run_dir, img, accel, golden, info, say, feed)


def _hostile(feed, guest_mac: str, host=None, guest_ip="10.201.0.2", md_port=30001):
    host = host or exchange.Endpoint("02:48:46:54:4c:01", "10.201.0.1", 40000)
    return exchange.hostile_frames(host, exchange.Endpoint(guest_mac, guest_ip, md_port),
                                   feed.session)


def _udp_payload(frame: bytes) -> bytes:
    ulen = int.from_bytes(frame[38:40], "big")
    return frame[42: 42 + ulen - 8]


def _golden_of_datagrams(spec: RunSpec, datagrams: list[bytes]) -> core.GoldenResult:
    """What the golden model orders for exactly these MoldUDP64 datagrams."""
    eng = core.Engine(spec.config)
    eng.feed_packets(datagrams)
    return core.GoldenResult(orders=eng.orders(), ouch=eng.ouch(), counters=eng.counters(),
                             config=spec.config)


def _params(spec: RunSpec, golden, host_ip, guest_ip, host_mac) -> OsParams:
    return OsParams(ip_self=guest_ip, ip_peer=host_ip, mac_peer=host_mac,
                    ctl_key=secrets.randbits(63), engine=spec.config, fault=spec.fault,
                    log_capacity=max(1024, min(1 << 18, golden.orders.num_rows * 2 + 1024)),
                    hiccup_ns=int(spec.hiccups_s * 1e9), hiccup_threshold_ns=spec.hiccup_threshold_ns)


GUEST_MAC = "52:54:00:48:46:54"


def _away_from(core: int | None) -> set[int] | None:
    """Every CPU but the SUT's (None: no pinning, or a single CPU)."""
    n = os.cpu_count() or 1
    if core is None or n < 2:
        return None
    return set(range(n)) - {core % n}


def _trade(spec, vm: Vm, feed, tx, rx, md_dst, ctl, golden, info, say, pre=None, ready=READY,
           capture=None):
    """Ready -> pin -> replay -> drain -> STOP -> QEMU exit status.

    The SUT's core is its own: the vCPU thread (or the baseline process) is
    pinned there, and the replayer, the order sink and dumpcap away from it."""
    phases = info["phases_s"]
    say("boot", 0.0)
    phases["ready"] = round(vm.wait_serial(ready, spec.boot_timeout), 3)
    info["vcpu_threads"] = vm.pin()  # the last is the SUT's, alone on spec.vcpu_core
    away = _away_from(spec.vcpu_core)
    if away and capture is not None:
        capture.pin(away)
    if spec.hiccups_s:  # the SUT records its poll loop's gaps, now pinned, before the feed
        t_h = time.monotonic()
        vm.wait_serial(HICCUPS_DONE, spec.hiccups_s * 20 + 30)
        phases["hiccups"] = round(time.monotonic() - t_h, 3)
    if pre is not None:
        pre()
    sink = exchange.OrderSink(rx, max_orders=max(1024, golden.orders.num_rows * 2 + 1024))
    rep = exchange.Replayer(tx, feed, md_dst, rate=spec.rate)
    sink.cpus = rep.cpus = away
    try:
        sink.start()
        t_r = time.monotonic()
        rep.start()
        while rep.is_alive():
            say("replay", rep.sent / max(1, feed.n_packets))
            rep.join(0.1)
        phases["replay"] = round(time.monotonic() - t_r, 3)
        if rep.error:
            raise RunError(f"replayer: {rep.error}")
        _drain(sink, golden.orders.num_rows, spec.drain_timeout, vm)
        ctl()
        status = vm.wait(spec.drain_timeout + 30)
    finally:
        rep.cancel()
        sink.cancel()
        rep.join(2)
        sink.join(2)
    return status, sink, rep


def _run_tap(spec, run_dir, img, accel, golden, info, say, feed) -> RunResult:
    with RunNetwork(info["run_id"]) as net:
        params = _params(spec, golden, net.host_ip, net.guest_ip, net.host_mac)
        info["image_sha256"] = write_image(img, run_dir / "hftos.img", params)
        info["network"] = {"mode": "tap", "netns": net.netns, "tap": net.tap,
                           "host_ip": net.host_ip, "guest_ip": net.guest_ip,
                           "md_port": params.md_port, "order_port": params.order_port}
        vmspec = VmSpec(image=run_dir / "hftos.img", workdir=run_dir, accel=accel, nic=spec.nic,
                        netdev=f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                        mac=GUEST_MAC, netns=net.netns, vcpu_core=spec.vcpu_core)
        tx = exchange.udp_socket(net.netns, net.host_ip, 0)
        rx = exchange.udp_socket(net.netns, net.host_ip, params.order_port)
        ctl = lambda: tx.sendto(exchange.control_message(1, params.ctl_key),  # noqa: E731
                                (net.guest_ip, params.ctl_port))
        pre = None  # hostile frames go in before the feed
        if spec.hostile:
            host = exchange.Endpoint(net.host_mac, net.host_ip, 40000)
            frames = _hostile(feed, GUEST_MAC, host, net.guest_ip, params.md_port)
            info["hostile"] = [name for name, _ in frames]

            def pre() -> None:  # noqa: F811
                with exchange.raw_socket(net.netns, net.tap) as raw:
                    for _, f in frames:
                        raw.send(f)
                time.sleep(0.2)
        try:
            with Capture(net, run_dir / "wire.pcapng") as cap, Vm(vmspec) as vm:
                t_q = time.monotonic()
                status, sink, rep = _trade(spec, vm, feed, tx, rx, (net.guest_ip, params.md_port),
                                           ctl, golden, info, say, pre, capture=cap)
                info["phases_s"]["vm_total"] = round(time.monotonic() - t_q, 3)
        finally:
            tx.close()
            rx.close()
    return _collect(spec, run_dir, status, sink.payloads(), sink.rx_ns, rep, feed, golden, info)


def _run_dgram(spec, run_dir, img, accel, golden, info, say, feed) -> RunResult:
    from .net import DgramLink, write_pcapng

    link = DgramLink(run_dir)
    params = _params(spec, golden, link.host_ip, link.guest_ip, link.host_mac)
    info["image_sha256"] = write_image(img, run_dir / "hftos.img", params)
    info["network"] = {"mode": "dgram", "host_ip": link.host_ip, "guest_ip": link.guest_ip,
                       "md_port": params.md_port, "order_port": params.order_port}
    host = exchange.Endpoint(link.host_mac, link.host_ip, 40000)
    guest = exchange.Endpoint(GUEST_MAC, link.guest_ip, params.md_port)
    frames = feed.frames(host, guest)
    ctl_frame = exchange.Feed(*_one(exchange.control_message(1, params.ctl_key))).frames(
        host, exchange.Endpoint(GUEST_MAC, link.guest_ip, params.ctl_port)).packet(0)
    vmspec = VmSpec(image=run_dir / "hftos.img", workdir=run_dir, accel=accel, nic=spec.nic,
                    netdev=link.netdev(), mac=GUEST_MAC, vcpu_core=spec.vcpu_core)
    sock = link.open()
    try:
        with Vm(vmspec) as vm:
            t_q = time.monotonic()
            hostile = _hostile(feed, GUEST_MAC, host, link.guest_ip, params.md_port) \
                if spec.hostile else []
            info["hostile"] = [name for name, _ in hostile] or None
            status, sink, rep = _trade(spec, vm, frames, sock, sock, str(link.qemu_path),
                                       lambda: sock.send(ctl_frame), golden, info, say,
                                       lambda: [sock.sendto(f, str(link.qemu_path)) for _, f in hostile])
            info["phases_s"]["vm_total"] = round(time.monotonic() - t_q, 3)
    finally:
        link.close()
    got = sink.payloads()
    recs = [(int(t), frames.packet(i)) for i, t in enumerate(rep.sent_ns[: rep.sent])]
    recs += [(int(sink.rx_ns[i]), f) for i, f in enumerate(got)]
    write_pcapng(run_dir / "wire.pcapng", recs, comment="written by hftlab: dgram link, no tap")
    payloads, rx_ns = [], []
    from ._core import ffi as _ffi, lib as _lib
    view = _ffi.new("struct net_udp_view *")
    for i, f in enumerate(got):  # keep the UDP payloads of order frames
        if _lib.net_parse_udp(f, len(f), view) == 0 and view.dst_port == params.order_port:
            payloads.append(bytes(_ffi.buffer(view.payload, view.payload_len)))
            rx_ns.append(sink.rx_ns[i])
    return _collect(spec, run_dir, status, payloads, np.array(rx_ns, np.int64), rep, feed,
                    golden, info)


def _one(payload: bytes):
    """Feed fields for a single datagram."""
    data = np.frombuffer(payload, np.uint8).copy()
    return (data, np.array([0, len(payload)], np.uint64), np.array([0], np.uint16), 0, b"\0" * 10)


def _drain(sink: exchange.OrderSink, expected: int, timeout: float, vm: Vm) -> None:
    """Wait until the expected orders arrived, or no new one for a while."""
    deadline = time.monotonic() + timeout
    last, last_t = -1, time.monotonic()
    while time.monotonic() < deadline and sink.count < expected:
        if vm.poll() is not None:
            return
        if sink.count != last:
            last, last_t = sink.count, time.monotonic()
        elif time.monotonic() - last_t > 2.0:
            return
        time.sleep(0.02)


def _collect(spec, run_dir, status, payloads, rx_ns, rep, feed, golden, info,
             ok_status: int | None = None) -> RunResult:
    from .vm import debug_exit_status

    info["qemu_exit_status"] = status
    info["replay"] = {"datagrams": feed.n_packets, "messages": feed.n_messages,
                      "sent": rep.sent, "late_ns_max": rep.late_ns_max}
    serial = (run_dir / "serial.log").read_bytes()
    ok_status = debug_exit_status(0x10) if ok_status is None else ok_status  # 0: a host process
    if status != ok_status:
        raise RunError(f"{spec.sut} ended with status {status} ({ok_status} means ok); serial tail:\n"
                       f"{serial[-1500:].decode('utf-8', 'replace')}")
    log = sutlog.parse_dump(serial, source=str(run_dir / "serial.log"))
    meta = {"hftlab.run": json.dumps(info, default=str)}
    _write_arrow(log.records, run_dir / "sut_log.arrow",
                 {**meta, "hftlab.counters": json.dumps(log.counters)})
    ouch = b"".join(payloads)
    orders = core.orders_from_ouch(ouch).append_column("rx_ns", pa.array(rx_ns[: len(payloads)]))
    write_parquet(orders, run_dir / "orders.parquet", meta)
    info["counters"] = log.counters
    if hiccups.has_hiccups(log.counters):
        info["hiccups"] = hiccups.summary(log.counters)
    info["boot_phases_ms"] = sutlog.boot_phases(serial, log.tsc_hz)
    info["orders"] = {"sut": len(payloads), "golden": golden.orders.num_rows,
                      "equal": ouch == golden.ouch}
    if ouch != golden.ouch:
        raise RunError(f"orders differ from the golden model: SUT sent {len(payloads)}, "
                       f"golden {golden.orders.num_rows}")
    ticks, worders, _ = _wire_events(run_dir / "wire.pcapng", info["network"]["md_port"],
                                     info["network"]["order_port"])
    # The capture must hold every datagram sent and every order received:
    # a tail percentile over a capture with holes would be a guess.
    info["capture"].update(md_frames=len(ticks.ts_ns), order_frames=len(worders.token),
                           md_sent=int(rep.sent), orders_received=len(payloads))
    if len(worders.token) != len(payloads) or len(ticks.ts_ns) < rep.sent:
        raise RunError(f"the capture is incomplete: {len(ticks.ts_ns)} of {rep.sent} market-data "
                       f"datagrams and {len(worders.token)} of {len(payloads)} orders")
    lat = latency.join(ticks, worders, log.records, log.tsc_hz)
    write_parquet(lat, run_dir / "latency.parquet", meta)
    res = RunResult(run_dir=run_dir, status="ok", info=info, latency=lat)
    info["latency"] = res.summary()
    return res
