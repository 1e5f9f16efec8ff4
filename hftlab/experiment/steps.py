"""The steps every run shares, HFT-OS's and the baselines': the OS/baseline
parameters of a run, the ready -> pin -> replay -> drain -> STOP sequence,
and the collection of the SUT's dump, orders and capture into the run
directory (run.json, sut_log.arrow, orders.parquet, latency.parquet)."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from hftlab import capture
from hftlab.analysis import hiccups, latency
from hftlab.errors import HftlabError, RunError
from hftlab.experiment.spec import RunResult, RunSpec
from hftlab.lab import exchange, sutlog
from hftlab.lab.build import OsParams
from hftlab.lab.vm import Vm, debug_exit_status
from hftlab.model import core
from hftlab.util.io import AtomicPath, write_parquet

__all__ = ["plan_feed", "replay_record", "READY", "HICCUPS_DONE", "write_json", "write_arrow", "wire_events", "hostile_frames",
           "udp_payload", "golden_of_datagrams", "os_params", "away_from", "trade", "drain",
           "collect"]


READY = b"HFTOS READY"
HICCUPS_DONE = b"HICCUPS DONE"  #: the gap recorder is over: the feed may start
PTP_LOCKED = b"PTP LOCKED"  #: the PTP slave's servo locked (runtime/ptp_slave.c)


def write_json(path: Path, info: dict) -> None:
    with AtomicPath(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")


def write_arrow(table: pa.Table, path: Path, meta: dict[str, str]) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in meta.items()}})
    with AtomicPath(path) as tmp:
        with ipc.new_file(tmp, table.schema) as w:
            w.write_table(table)


def wire_events(pcap: Path, md_port: int, order_port: int):
    """Tick datagrams and order frames from the capture."""
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
    # A Cancel Order (a quoting strategy) carries no token of its own, so no
    # trigger: it has no tick-to-trade row.
    o = o.filter(pa.compute.is_valid(o.column("token")))
    orders = latency.WireOrders(ts_ns=o.column("ts_ns").to_numpy(),
                                token=o.column("token").to_pylist())
    return ticks, orders, cap


def plan_feed(spec: RunSpec, guest_mac: str) -> tuple[exchange.Feed, core.GoldenResult, dict]:
    """What the replayer will send and when, and the golden model's orders for
    exactly that: the dataset packed (or the capture's MoldUDP64 datagrams,
    spec.replay), the hostile changes (spec.hostile), the schedule of
    spec.pacing() in feed.due_ns. Every input error is raised here, before
    anything is built or booted. Returns (feed, golden, run.json's "pacing" spec)."""
    pacing = spec.pacing()
    note: dict = {}
    if spec.replay is not None:
        feed, recorded, note = exchange.capture_feed(spec.replay)
        golden = golden_of_datagrams(spec, [feed.packet(i) for i in range(feed.n_packets)])
    else:
        feed = exchange.pack_feed(spec.dataset, messages=spec.messages,
                                  max_payload=spec.max_payload, max_count=spec.max_count)
        recorded = (exchange.recorded_times(feed, spec.dataset, spec.messages)
                    if pacing.mode == "recorded" else None)
        golden = core.golden(spec.dataset, spec.config, messages=spec.messages)
    if spec.hostile:
        # a duplicate of datagram 5 right after it, and datagram 10 never sent
        n = feed.n_packets
        order = [i for i in range(n) if i != min(10, n - 1)]
        order.insert(min(6, len(order)), min(5, n - 1))
        recorded = recorded[order] if recorded is not None else None
        feed = feed.select(order)
        truncated = [udp_payload(f) for name, f in hostile_frames(feed, guest_mac)
                     if name == "mold_truncated"]
        golden = golden_of_datagrams(spec, truncated + [feed.packet(i)
                                                        for i in range(feed.n_packets)])
    feed.due_ns = pacing.due(feed, recorded)
    info = pacing.to_dict()
    if note:
        info["replay"] = note
    if feed.due_ns is not None and len(feed.due_ns):
        info["planned_s"] = round(float(feed.due_ns[-1]) / 1e9, 6)
    return feed, golden, info


def replay_record(run_dir: Path, feed: exchange.Feed, rep: exchange.Replayer, ticks, info: dict,
                  pacing: exchange.Pacing) -> None:
    """replay.parquet (one row per datagram sent: sequence numbers, due, send
    and wire time) and run.json's "pacing" summary. `ticks` are the capture's
    MoldUDP64 datagrams toward the SUT (None: no capture): the feed's are its
    last `sent` whose sequence numbers match (hostile frames go before them)."""
    n = int(rep.sent)
    wire = None
    if ticks is not None and n:
        first, _ = exchange.datagram_seqs(feed)
        got = np.asarray(ticks.first_seq, np.uint64)
        for k in (len(got) - n, 0):
            if 0 <= k and k + n <= len(got) and np.array_equal(got[k: k + n], first[:n]):
                wire = np.asarray(ticks.ts_ns, np.int64)[k: k + n]
                break
    table = exchange.pacing_table(feed, rep.due_ns, rep.t0_real_ns, rep.sent_ns[:n], wire)
    summary = exchange.pacing_summary(table, pacing)
    summary.update(replayer={"sched_fifo": rep.realtime, "send_retries": rep.backoffs,
                             "spin_ns_at_end": rep.spin_ns, "oversleep_p95_ns": rep.oversleep_q_ns,
                             "late_ns_max_seen_by_replayer": rep.late_ns_max})
    if ticks is not None and wire is None:
        summary["warnings"].append("the capture's MoldUDP64 datagrams do not match those sent "
                                   "one for one: no wire times, the error is the send error")
    info["pacing"] = {**info.get("pacing", {}), **summary}
    write_parquet(table, run_dir / "replay.parquet",
                  {"hftlab.pacing": json.dumps(info["pacing"], default=str),
                   "hftlab.run": json.dumps(info, default=str)})


def hostile_frames(feed, guest_mac: str, host=None, guest_ip="10.201.0.2", md_port=30001):
    host = host or exchange.Endpoint("02:48:46:54:4c:01", "10.201.0.1", 40000)
    return exchange.hostile_frames(host, exchange.Endpoint(guest_mac, guest_ip, md_port),
                                   feed.session)


def udp_payload(frame: bytes) -> bytes:
    ulen = int.from_bytes(frame[38:40], "big")
    return frame[42: 42 + ulen - 8]


def golden_of_datagrams(spec: RunSpec, datagrams: list[bytes]) -> core.GoldenResult:
    """What the golden model orders for exactly these MoldUDP64 datagrams."""
    eng = core.Engine(spec.config)
    eng.feed_packets(datagrams)
    return core.GoldenResult(orders=eng.orders(), ouch=eng.ouch(), counters=eng.counters(),
                             config=spec.config)


def os_params(spec: RunSpec, golden, host_ip, guest_ip, host_mac) -> OsParams:
    return OsParams(ip_self=guest_ip, ip_peer=host_ip, mac_peer=host_mac,
                    ctl_key=secrets.randbits(63), engine=spec.config, fault=spec.fault,
                    log_capacity=max(1024, min(1 << 18, golden.orders.num_rows * 2 + 1024)),
                    hiccup_ns=int(spec.hiccups_s * 1e9), hiccup_threshold_ns=spec.hiccup_threshold_ns,
                    ptp=getattr(spec, "ptp", False), ptp_domain=getattr(spec, "ptp_domain", 0),
                    ptp_wait=getattr(spec, "ptp_wait_lock", True))


def away_from(core: int | None) -> set[int] | None:
    """Every CPU but the SUT's (None: no pinning, or a single CPU)."""
    n = os.cpu_count() or 1
    if core is None or n < 2:
        return None
    return set(range(n)) - {core % n}


def trade(spec, vm: Vm, feed, tx, rx, md_dst, ctl, golden, info, say, pre=None, ready=READY,
           capture=None):
    """Ready -> pin -> replay -> drain -> STOP -> QEMU exit status.

    The SUT's core is its own: the vCPU thread (or the baseline process) is
    pinned there, and the replayer, the order sink and dumpcap away from it."""
    phases = info["phases_s"]
    say("boot", 0.0)
    phases["ready"] = round(vm.wait_serial(ready, spec.boot_timeout), 3)
    info["vcpu_threads"] = vm.pin()  # the last is the SUT's, alone on spec.vcpu_core
    away = away_from(spec.vcpu_core)
    if away and capture is not None:
        capture.pin(away)
    if spec.hiccups_s:  # the SUT records its poll loop's gaps, now pinned, before the feed
        t_h = time.monotonic()
        vm.wait_serial(HICCUPS_DONE, spec.hiccups_s * 20 + 30)
        phases["hiccups"] = round(time.monotonic() - t_h, 3)
    if getattr(spec, "ptp", False) and spec.ptp_wait_lock:  # the slave locks before the feed
        t_p = time.monotonic()
        vm.wait_serial(PTP_LOCKED, spec.ptp_lock_timeout)
        phases["ptp_lock"] = round(time.monotonic() - t_p, 3)
    if getattr(spec, "ptp", False):
        time.sleep(spec.ptp_settle_s)
    if pre is not None:
        pre()
    sink = exchange.OrderSink(rx, max_orders=max(1024, golden.orders.num_rows * 2 + 1024))
    spin = {"spin_ns": 10_000, "spin_max_ns": 200_000} if spec.replay_spin == "adaptive" else \
        {"spin_ns": 20_000, "spin_max_ns": 0}
    rep = exchange.Replayer(tx, feed, md_dst, due_ns=feed.due_ns, rt_prio=spec.replay_rt_prio, **spin)
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
        drain(sink, golden.orders.num_rows, spec.drain_timeout, vm)
        ctl()
        try:
            status = vm.wait(spec.drain_timeout + 30)
        except RunError as exc:  # say where the guest is, then the usual teardown
            raise RunError(f"{exc}; {hung_where(spec, vm)}") from None
    finally:
        rep.cancel()
        sink.cancel()
        rep.join(2)
        sink.join(2)
    return status, sink, rep


def _syms_file(spec) -> Path:
    """The function symbols of the HFT-OS image this run boots."""
    from hftlab.lab.build import SYMS_FILE, strategy_build_dir

    return strategy_build_dir(spec.config.strategy.file)[1] / SYMS_FILE


def hung_where(spec, vm) -> str:
    """Where a guest that no longer answers is running: its vCPU's RIP
    sampled a few times, named from the image's symbols (HFT-OS)."""
    rips = vm.rip_samples() if hasattr(vm, "rip_samples") else []
    if not rips:
        return "the guest's registers could not be read"
    names = {}
    if spec.sut == "hftos":
        from hftlab.lab.build import symbolize

        syms = _syms_file(spec)
        if syms.is_file():
            names = {r: symbolize(r, syms) for r in set(rips)}
    return "guest rip samples: " + ", ".join(
        f"{r:#x}" + (f" ({names[r]})" if names.get(r) else "") for r in rips)


def ptp_collect(spec, run_dir: Path, serial: bytes, log, info: dict, meta: dict) -> None:
    """The slave's series into ptp.parquet and a summary into run.json."""
    from hftlab.lab import ptp as labptp

    series = labptp.parse_ptp_series(serial, domain=spec.ptp_domain, source=str(run_dir / "serial.log"))
    write_parquet(series, run_dir / "ptp.parquet", meta)
    c = {k: v for k, v in log.counters.items() if k.startswith("ptp_")}
    signed = lambda v: v - (1 << 64) if v >= 1 << 63 else v  # noqa: E731
    hw = bool(c.get("ptp_hw_stamps"))
    info["ptp"] = {
        "master": "ptp4l (linuxptp), software time stamps, on the tap in the run's namespace",
        "transport": spec.ptp_transport, "domain": spec.ptp_domain,
        "stamps": "nic-hardware" if hw else "tsc-poll-loop",
        "stamps_detail": (f"{spec.nic} hardware time stamps of Sync/Delay_Req, converted to TSC by "
                          "their age on the NIC clock" if hw else
                          "the poll loop's TSC stamp of the frame / right after the TX doorbell"),
        "state": labptp.SERVO_STATES[c["ptp_state"]] if c.get("ptp_state", 9) < 4 else None,
        "mean_path_delay_ns": signed(c.get("ptp_mean_path_delay_ns", 0)),
        "freq_ppb": signed(c.get("ptp_freq_ppb_scaled", 0)) / 65536,
        "summary": labptp.ptp_summary(series, log.tsc_hz),
        "series": "ptp.parquet",
        "counters": c,
    }


def drain(sink: exchange.OrderSink, expected: int, timeout: float, vm: Vm) -> None:
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


def collect(spec, run_dir, status, payloads, rx_ns, rep, feed, golden, info,
             ok_status: int | None = None) -> RunResult:
    info["qemu_exit_status"] = status
    info["replay"] = {"datagrams": feed.n_packets, "messages": feed.n_messages,
                      "sent": rep.sent, "late_ns_max": rep.late_ns_max}
    try:
        wire = wire_events(run_dir / "wire.pcapng", info["network"]["md_port"],
                           info["network"]["order_port"])
    except (OSError, HftlabError) as exc:  # the run failed before its capture was whole
        wire = None
        info.setdefault("pacing", {})["capture_error"] = str(exc)
    replay_record(run_dir, feed, rep, wire[0] if wire else None, info, spec.pacing())
    serial = (run_dir / "serial.log").read_bytes()
    ok_status = debug_exit_status(0x10) if ok_status is None else ok_status  # 0: a host process
    if status != ok_status:
        if spec.sut == "hftos":  # an exception dump: name the faulting function
            from hftlab.lab.build import fault_summary

            fault = fault_summary(serial, _syms_file(spec))
            if fault:
                info["fault"] = fault
                raise RunError(f"hftos: {fault} (strategy {spec.config.strategy.file or 'trigger'}); "
                               f"serial tail:\n{serial[-1500:].decode('utf-8', 'replace')}")
        raise RunError(f"{spec.sut} ended with status {status} ({ok_status} means ok); serial tail:\n"
                       f"{serial[-1500:].decode('utf-8', 'replace')}")
    log = sutlog.parse_dump(serial, source=str(run_dir / "serial.log"))
    meta = {"hftlab.run": json.dumps(info, default=str)}
    write_arrow(log.records, run_dir / "sut_log.arrow",
                 {**meta, "hftlab.counters": json.dumps(log.counters)})
    ouch = b"".join(payloads)
    orders = core.orders_from_ouch(ouch).append_column("rx_ns", pa.array(rx_ns[: len(payloads)]))
    write_parquet(orders, run_dir / "orders.parquet", meta)
    info["counters"] = log.counters
    refused = sutlog.refused_frame(serial)
    if refused:
        info["refused_frame"] = refused
    if hiccups.has_hiccups(log.counters):
        info["hiccups"] = hiccups.summary(log.counters)
    info["boot_phases_ms"] = sutlog.boot_phases(serial, log.tsc_hz)
    if getattr(spec, "ptp", False):
        ptp_collect(spec, run_dir, serial, log, info, meta)
    info["orders"] = {"sut": len(payloads), "golden": golden.orders.num_rows,
                      "equal": ouch == golden.ouch}
    if ouch != golden.ouch:
        lost = {k: log.counters[k] for k in ("mold_gaps", "mold_gap_messages", "os_ip_errors",
                                              "os_udp_errors", "os_rx_missed") if log.counters.get(k)}
        raise RunError(f"orders differ from the golden model: SUT sent {len(payloads)}, "
                       f"golden {golden.orders.num_rows}"
                       + (f"; the SUT lost input: {lost}" if lost else "")
                       + (f"; first refused frame: {refused}" if refused else ""))
    if wire is None:
        raise RunError(f"the capture cannot be read: {info['pacing'].get('capture_error')}")
    ticks, worders, _ = wire
    # The capture must hold every datagram sent and every order received:
    # a tail percentile over a capture with holes would be a guess.
    info["capture"].update(md_frames=len(ticks.ts_ns), order_frames=len(worders.token),
                           md_sent=int(rep.sent), orders_received=len(payloads))
    joinable = sum(1 for p in payloads if p[:1] != b"X")  # a Cancel has no token (wire_events)
    if len(worders.token) != joinable or len(ticks.ts_ns) < rep.sent:
        raise RunError(f"the capture is incomplete: {len(ticks.ts_ns)} of {rep.sent} market-data "
                       f"datagrams and {len(worders.token)} of {joinable} orders with a token")
    lat = latency.join(ticks, worders, log.records, log.tsc_hz)
    write_parquet(lat, run_dir / "latency.parquet", meta)
    res = RunResult(run_dir=run_dir, status="ok", info=info, latency=lat)
    info["latency"] = res.summary()
    return res
