"""A Linux baseline's run: the baseline built, its network (a tap for the
guest, a veth pair on the host), the guest VM or the host process, then the
steps every run shares (hftlab.experiment.steps)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hftlab.experiment import steps
from hftlab.lab import exchange, guest
from hftlab.lab.baselines import INTERNAL_SPAN, READY, VethNetwork, build_baseline, host_process
from hftlab.lab.build import sha256
from hftlab.lab.net import Capture, RunNetwork
from hftlab.lab.vm import GUEST_MAC

__all__ = ["execute"]


def execute(spec, run_dir: Path, accel, golden, info: dict[str, Any], say, feed):
    """Run a baseline (spec.sut) at spec.where; the RunResult of steps.collect."""

    exe = build_baseline(spec.sut, spec.config.strategy.file)
    info["baseline"] = {"binary": str(exe), "sha256": sha256(exe), "where": spec.where,
                        "internal_span": INTERNAL_SPAN[spec.sut]}
    if spec.where == "host":
        net: RunNetwork = VethNetwork(info["run_id"], GUEST_MAC)
    else:
        net = RunNetwork(info["run_id"])
    with net:
        params = steps.os_params(spec, golden, net.host_ip, net.guest_ip, net.host_mac)
        info["network"] = {"mode": "veth" if spec.where == "host" else "tap",
                           "netns": net.netns, "link": net.tap, "host_ip": net.host_ip,
                           "guest_ip": net.guest_ip, "md_port": params.md_port,
                           "order_port": params.order_port}
        cfg = run_dir / "engine_config.bin"
        cfg.write_bytes(spec.config.to_bytes())
        if spec.where == "host":
            sut = host_process(spec, run_dir, net, params, cfg, exe, info)
            ok_status = 0
        else:
            sut = guest.guest_vm(spec, run_dir, accel, net, params, cfg, exe, info)
            ok_status = None  # isa-debug-exit, as HFT-OS
        status, sink, rep = _trade_on(spec, run_dir, net, params, sut, feed, golden, info,
                                       say)
    if spec.where == "guest":
        info["guest"]["phases_s"] = guest.guest_phases((run_dir / "serial.log").read_bytes())
    return steps.collect(spec, run_dir, status, sink.payloads(), sink.rx_ns, rep, feed, golden,
                         info, ok_status=ok_status)


def _trade_on(spec, run_dir: Path, net: RunNetwork, params, sut, feed, golden, info, say):
    """Capture, start the SUT, then the same ready/replay/STOP sequence as HFT-OS."""
    tx = exchange.udp_socket(net.netns, net.host_ip, 0)
    rx = exchange.udp_socket(net.netns, net.host_ip, params.order_port)
    ctl = lambda: tx.sendto(exchange.control_message(1, params.ctl_key),  # noqa: E731
                            (net.guest_ip, params.ctl_port))
    pre = None
    if spec.hostile:
        host = exchange.Endpoint(net.host_mac, net.host_ip, 40000)
        frames = steps.hostile_frames(feed, GUEST_MAC, host, net.guest_ip, params.md_port)
        info["hostile"] = [name for name, _ in frames]

        def pre() -> None:
            with exchange.raw_socket(net.netns, net.tap) as raw:
                for _, f in frames:
                    raw.send(f)
            time.sleep(0.2)
    try:
        with Capture(net, run_dir / "wire.pcapng") as cap, sut:
            t_q = time.monotonic()
            res = steps.trade(spec, sut, feed, tx, rx, (net.guest_ip, params.md_port), ctl,
                             golden, info, say, pre, ready=READY, capture=cap)
            info["phases_s"]["sut_total"] = round(time.monotonic() - t_q, 3)
    finally:
        tx.close()
        rx.close()
    return res
