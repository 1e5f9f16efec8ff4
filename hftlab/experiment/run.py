"""hftlab.experiment.run: one experiment end to end, into a run directory.

    build image -> patch config -> netns + tap -> dumpcap -> QEMU -> ready
    -> replay MoldUDP64 + collect OUCH -> STOP -> dump -> exit status
    -> sut_log.arrow, orders.parquet, latency.parquet, run.json

Every resource is released on every path (success, error, timeout, Ctrl-C)
by nested context managers; run.json is written at the start with status
"running" and rewritten at the end with "ok" or "failed" and the error. A
run whose orders differ from the golden model is a failed run.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hftlab._core import ffi as _ffi, lib as _lib
from hftlab.analysis.report import run_report
from hftlab.errors import ConfigError, HftlabError
from hftlab.experiment import baseline, hw, steps
from hftlab.experiment.spec import DEFAULT_DATASET, SUTS, RunResult, RunSpec
from hftlab.lab import exchange
from hftlab.lab.build import build_os, sha256, write_image
from hftlab.lab.media import vm_spec
from hftlab.lab.net import Capture, DgramLink, RunNetwork, write_pcapng
from hftlab.lab.ptp import Ptp4l, hostile_ptp_frames
from hftlab.lab.vm import GUEST_MAC, IMAGE_F_CPL3_LOOP, Vm, choose_accel, image_features, qemu_version
from hftlab.model import core
from hftlab.util.env import environment
from hftlab.util.paths import ROOT

__all__ = ["RunSpec", "RunResult", "run", "DEFAULT_DATASET", "SUTS"]


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _environment() -> dict[str, Any]:
    return environment() | {"qemu": qemu_version()}


def run(spec: RunSpec, *, progress: Callable[[str, float], None] | None = None) -> RunResult:
    """Run one experiment. `progress(stage, fraction)` is called as it goes."""
    spec.validate()
    feed, golden, pacing = steps.plan_feed(spec, GUEST_MAC)  # bad input fails here: nothing made yet
    say = progress or (lambda stage, frac: None)
    run_id = _run_id()
    run_dir = Path(spec.out) if spec.out else ROOT / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    boot = hw.choose_boot(spec) if spec.sut == "hftos" else None  # baselines: guest.py's choice
    # KVM's PVM flavour only for HFT-OS by PVH: its loop runs at CPL3 (checked below)
    accel = choose_accel(spec.accel, pvm_image=bool(boot and boot.name == "pvh"))
    info: dict[str, Any] = {
        "run_id": run_id, "status": "running",
        "spec": {"sut": spec.sut, "accel": accel.name, "accel_requested": spec.accel,
                 "accel_reason": accel.reason, "where": spec.where, "nic": spec.nic,
                 "boot": boot.name if boot else None, "boot_requested": spec.boot,
                 "boot_reason": boot.reason if boot else "a Linux guest: see guest.boot",
                 "dataset": str(spec.dataset),
                 "dataset_sha256": sha256(Path(spec.dataset)), "messages": spec.messages,
                 "rate_msgs_per_s": pacing["rate_msgs_per_s"],
                 "replay": str(spec.replay) if spec.replay else None,
                 "replay_sha256": sha256(Path(spec.replay)) if spec.replay else None,
                 "config": spec.config.to_dict(),
                 "strategy": _strategy_info(spec.config),
                 "max_payload": spec.max_payload, "max_count": spec.max_count,
                 "hiccups_s": spec.hiccups_s, "hiccup_threshold_ns": spec.hiccup_threshold_ns,
                 "target": spec.target, "media": spec.media, "ptp": spec.ptp,
                 "ptp_transport": spec.ptp_transport if spec.ptp else None},
        "pacing": pacing, "environment": _environment(), "phases_s": {}, "capture": {"tool": "dumpcap", "link": "tap"},
    }
    steps.write_json(run_dir / "run.json", info)
    phases = info["phases_s"]
    t0 = time.monotonic()
    try:
        say("build", 0.0)
        # baselines build their own
        img = build_os(boot=boot.name, strategy=spec.config.strategy.file) if boot else None
        if accel.name == "kvm-pvm" and not image_features(img) & IMAGE_F_CPL3_LOOP:
            raise ConfigError(f"accel kvm-pvm: {img} does not run its loop at CPL3 "
                              "(HFTOS_IMAGE_F_CPL3_LOOP clear): it would run by emulation")
        phases["build"] = round(time.monotonic() - t0, 3)
        result = _execute(spec, run_dir, img, accel, golden, info, say, feed, boot)
        info["status"] = "ok"
        phases["total"] = round(time.monotonic() - t0, 3)
        steps.write_json(run_dir / "run.json", info)
        say("report", 1.0)
        result.report = run_report(run_dir)
        return result
    except (HftlabError, KeyboardInterrupt) as exc:
        info["status"] = "failed"
        info["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        phases["total"] = round(time.monotonic() - t0, 3)
        steps.write_json(run_dir / "run.json", info)


def _strategy_info(config: core.EngineConfig) -> dict[str, str]:
    """The strategy every SUT and the golden model were built with."""
    from hftlab.model.strategy_cache import resolve_strategy

    path = resolve_strategy(config.strategy.file)
    return {"file": str(path), "sha256": sha256(path)}


def _execute(spec: RunSpec, run_dir: Path, img: Path, accel, golden: core.GoldenResult,
             info: dict, say, feed: exchange.Feed, boot=None) -> RunResult:
    mode = spec.network if spec.network != "auto" else ("tap" if os.geteuid() == 0 else "dgram")
    run_fn = _run_tap if mode == "tap" else _run_dgram
    info["capture"] = ({"tool": "dumpcap", "link": "tap in a network namespace"} if mode == "tap"
                       else {"tool": "hftlab (replayer send and receive times)",
                             "link": "QEMU dgram netdev on unix sockets (no root: no tap)"})
    if spec.sut != "hftos":  # a Linux baseline, on the host or in a guest
        return baseline.execute(spec, run_dir, accel, golden, info, say, feed)
    if spec.target == "hw":  # a machine on IFACE and a serial console (hftlab.experiment.hw)
        return hw.execute(spec, run_dir, img, golden, info, say, feed)
    return run_fn(spec, run_dir, img, accel, golden, info, say, feed, boot)


def _os_copy(img: Path, run_dir: Path) -> Path:
    """The run's copy of the OS: hftos.img (bios) or hftos.elf (pvh)."""
    return run_dir / img.name


def _run_tap(spec, run_dir, img, accel, golden, info, say, feed, boot) -> RunResult:
    with RunNetwork(info["run_id"]) as net:
        params = steps.os_params(spec, golden, net.host_ip, net.guest_ip, net.host_mac)
        info["image_sha256"] = write_image(img, _os_copy(img, run_dir), params)
        info["network"] = {"mode": "tap", "netns": net.netns, "tap": net.tap,
                           "host_ip": net.host_ip, "guest_ip": net.guest_ip,
                           "md_port": params.md_port, "order_port": params.order_port}
        vmspec = vm_spec(spec.media, boot, _os_copy(img, run_dir), workdir=run_dir, accel=accel,
                         nic=spec.nic, netdev=f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                         mac=GUEST_MAC, netns=net.netns, vcpu_core=spec.vcpu_core,
                         extra=tuple(spec.qemu_args))
        pxe = hw.pxe_server(spec, run_dir, _os_copy(img, run_dir), net.tap, net.host_ip,
                            net.guest_ip, net.netns, GUEST_MAC)
        tx = exchange.udp_socket(net.netns, net.host_ip, 0)
        rx = exchange.udp_socket(net.netns, net.host_ip, params.order_port)
        ctl = lambda: tx.sendto(exchange.control_message(1, params.ctl_key),  # noqa: E731
                                (net.guest_ip, params.ctl_port))
        pre = None  # hostile frames go in before the feed
        if spec.hostile:
            host = exchange.Endpoint(net.host_mac, net.host_ip, 40000)
            frames = steps.hostile_frames(feed, GUEST_MAC, host, net.guest_ip, params.md_port)
            info["hostile"] = [name for name, _ in frames]

            def pre() -> None:  # noqa: F811
                with exchange.raw_socket(net.netns, net.tap) as raw:
                    for _, f in frames:
                        raw.send(f)
                time.sleep(0.2)
        master = (Ptp4l(net, run_dir, domain=spec.ptp_domain, transport=spec.ptp_transport,
                        log_sync=spec.ptp_log_sync)
                  if spec.ptp else contextlib.nullcontext())
        if spec.ptp and spec.ptp_hostile:  # after the lock, before the feed
            pre_feed = pre

            def pre() -> None:  # noqa: F811
                frames = hostile_ptp_frames(net.host_mac, master.clock_id() or bytes(8), spec.ptp_domain)
                info["ptp_hostile"] = [name for name, _ in frames]
                with exchange.raw_socket(net.netns, net.tap) as raw:
                    for _, f in frames:
                        raw.send(f)
                time.sleep(0.5)
                if pre_feed is not None:
                    pre_feed()
        try:
            # ptp4l after QEMU: the tap has no carrier before (ptp4l: FAULTY, 16 s to retry)
            with pxe, Capture(net, run_dir / "wire.pcapng") as cap, Vm(vmspec) as vm, master:
                t_q = time.monotonic()
                status, sink, rep = steps.trade(spec, vm, feed, tx, rx, (net.guest_ip, params.md_port),
                                           ctl, golden, info, say, pre, capture=cap)
                info["phases_s"]["vm_total"] = round(time.monotonic() - t_q, 3)
            info["network"]["tap_stats"] = net.tap_stats()
            if spec.media == "pxe":
                info["pxe"] = pxe.summary()
        finally:
            tx.close()
            rx.close()
    return steps.collect(spec, run_dir, status, sink.payloads(), sink.rx_ns, rep, feed, golden, info)


def _run_dgram(spec, run_dir, img, accel, golden, info, say, feed, boot) -> RunResult:
    link = DgramLink(run_dir)
    params = steps.os_params(spec, golden, link.host_ip, link.guest_ip, link.host_mac)
    info["image_sha256"] = write_image(img, _os_copy(img, run_dir), params)
    info["network"] = {"mode": "dgram", "host_ip": link.host_ip, "guest_ip": link.guest_ip,
                       "md_port": params.md_port, "order_port": params.order_port}
    host = exchange.Endpoint(link.host_mac, link.host_ip, 40000)
    guest = exchange.Endpoint(GUEST_MAC, link.guest_ip, params.md_port)
    frames = feed.frames(host, guest)
    ctl_frame = exchange.Feed(*_one(exchange.control_message(1, params.ctl_key))).frames(
        host, exchange.Endpoint(GUEST_MAC, link.guest_ip, params.ctl_port)).packet(0)
    vmspec = vm_spec(spec.media, boot, _os_copy(img, run_dir), workdir=run_dir, accel=accel,
                     nic=spec.nic, netdev=link.netdev(), mac=GUEST_MAC, vcpu_core=spec.vcpu_core,
                     extra=tuple(spec.qemu_args))
    sock = link.open()
    try:
        with Vm(vmspec) as vm:
            t_q = time.monotonic()
            hostile = steps.hostile_frames(feed, GUEST_MAC, host, link.guest_ip, params.md_port) \
                if spec.hostile else []
            info["hostile"] = [name for name, _ in hostile] or None
            status, sink, rep = steps.trade(spec, vm, frames, sock, sock, str(link.qemu_path),
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
    view = _ffi.new("struct net_udp_view *")
    for i, f in enumerate(got):  # keep the UDP payloads of order frames
        if _lib.net_parse_udp(f, len(f), view) == 0 and view.dst_port == params.order_port:
            payloads.append(bytes(_ffi.buffer(view.payload, view.payload_len)))
            rx_ns.append(sink.rx_ns[i])
    return steps.collect(spec, run_dir, status, payloads, np.array(rx_ns, np.int64), rep, feed,
                    golden, info)


def _one(payload: bytes):
    """Feed fields for a single datagram."""
    data = np.frombuffer(payload, np.uint8).copy()
    return (data, np.array([0, len(payload)], np.uint64), np.array([0], np.uint16), 0, b"\0" * 10)
