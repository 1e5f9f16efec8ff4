"""How well the replayer keeps time (issue 19): pacing error figures.

Each case is one `hftlab run` of HFT-OS under TCG (real QEMU, tap in a
network namespace, dumpcap on the tap): the pacing error of every datagram is
its time on the wire (dumpcap) minus its due time (replay.parquet, run.json
"pacing"); the figures are |error| p50, p99, p99.9, max and the count late by
more than 10 us.

1. `--cases`: rate 20k, 100k and 1M msg/s with packing 64 and 1 on a seeded
   synthetic feed, and recorded mode on RITCH (its ITCH timestamps, --speed);
   the issue's goal: p99 <= 5 us at 100k msg/s.
2. `--compare`: 100k msg/s, packing 64, the replayer as it was (SCHED_OTHER,
   fixed 20 us spin) against SCHED_FIFO with the fixed spin and SCHED_FIFO
   with the adaptive spin (the default), interleaved over --reps.
3. `--sweep`: a rate sweep per SUT (hftos; linux-* on the host with
   --sweep-suts) for the highest rate with no RX drop (every datagram
   captured, orders golden-equal) and wire p99.9 < 1 ms: writes knee.png.

The host's load (uptime's 1-minute load average) is printed beside every
case: on a shared 2-core box the figures move with it.

    python benchmarks/replay.py [--messages 100000] [--seed 7] [--cases all|none|NAME,...]
        [--compare] [--reps 2] [--sweep] [--sweep-suts hftos] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.errors import HftlabError  # noqa: E402
from hftlab.experiment.run import RunSpec, run  # noqa: E402
from hftlab.model import synth  # noqa: E402

RITCH = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"


def load() -> float:
    return os.getloadavg()[0]


def one(name: str, out: Path, **kw) -> dict:
    """One run; its pacing summary (also for a failed run: run.json keeps it)."""
    d = out / name
    l0 = load()
    t0 = time.monotonic()
    err = None
    try:
        run(RunSpec(out=d, **kw))
    except HftlabError as exc:
        err = str(exc).splitlines()[0][:160]
    info = json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else {}
    p = info.get("pacing", {})
    lat = (info.get("latency") or {}).get("wire_ns") or {}
    c = info.get("counters") or {}
    return {"case": name, "pacing": p, "load": (l0 + load()) / 2, "s": time.monotonic() - t0,
            "error": err, "wire_p999": lat.get("p99.9"), "wire_max": lat.get("max"),
            "orders_equal": (info.get("orders") or {}).get("equal"),
            "rx_missed": sum(v for k, v in c.items() if ("missed" in k or "no_buffer" in k)
                             and isinstance(v, int)),
            "md_frames": (info.get("capture") or {}).get("md_frames"),
            "sent": (info.get("replay") or {}).get("sent")}


def fmt(r: dict) -> str:
    p = r["pacing"]
    e = p.get("error_ns") or {}
    us = lambda v: "-" if v is None else f"{v / 1000:,.1f}"  # noqa: E731
    rep = p.get("replayer", {})
    return (f"{r['case']:<26} {p.get('datagrams', 0):>7} {us(e.get('p50')):>9} {us(e.get('p99')):>9} "
            f"{us(e.get('p99.9')):>9} {us(e.get('max')):>9} {p.get('late', '-'):>7} "
            f"{p.get('achieved_msgs_per_s') or 0:>11,.0f} {p.get('error_of', '-'):>5} "
            f"{rep.get('spin_ns_at_end', 0) / 1000:>6.1f} {r['load']:>5.1f}"
            + (f"  FAILED: {r['error']}" if r["error"] else ""))


HEAD = (f"{'case':<26} {'dgrams':>7} {'p50 us':>9} {'p99 us':>9} {'p99.9 us':>9} {'max us':>9} "
        f"{'late>10':>7} {'got msg/s':>11} {'of':>5} {'spin':>6} {'load':>5}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cases", default="all")
    ap.add_argument("--speed", type=float, default=10_000.0, help="recorded mode on RITCH")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--sweep-suts", default="hftos")
    ap.add_argument("--sweep-messages", type=int, default=20_000)
    ap.add_argument("--sweep-start", type=float, default=2_500.0)
    ap.add_argument("--sweep-step", type=float, default=4.0)
    ap.add_argument("--sweep-points", type=int, default=5)
    ap.add_argument("--rt-prio", type=int, default=10,
                    help="the cases' replayer SCHED_FIFO priority (README's figures: 10; 0: "
                         "SCHED_OTHER, RunSpec's default)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="hftlab-replay-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    feed = out / f"synth-{a.messages}-seed{a.seed}.itch"
    if not feed.exists():
        synth.generate(feed, a.messages, seed=a.seed)
    print(f"host: {os.cpu_count()} CPUs, load average at start {os.getloadavg()}, "
          f"shared with other work; feed {feed.name}; out {out}")
    cases = {f"rate {r // 1000}k pack {c}": dict(dataset=feed, rate=float(r), max_count=c)
             for r in (20_000, 100_000, 1_000_000) for c in (64, 1)}
    cases[f"recorded RITCH x{a.speed:g}"] = dict(dataset=RITCH, pace="recorded", speed=a.speed)
    pick = list(cases) if a.cases == "all" else [] if a.cases == "none" else \
        [c for c in cases if c in a.cases.split(",")]
    rows = []
    if pick:
        print("\n1. pacing error |wire - due| per case (HFT-OS, tcg, e1000, tap, dumpcap)")
        print(HEAD)
        for name in pick:
            r = one(name.replace(" ", "_"), out, sut="hftos", accel="tcg", replay_rt_prio=a.rt_prio,
                    **cases[name])
            r["case"] = name
            rows.append(r)
            print(fmt(r), flush=True)
    if a.compare:
        print("\n2. the replayer's variants at 100k msg/s, packing 64, interleaved")
        print(HEAD)
        variants = {"SCHED_OTHER fixed 20us": dict(replay_rt_prio=0, replay_spin="fixed"),
                    "SCHED_FIFO fixed 20us": dict(replay_rt_prio=10, replay_spin="fixed"),
                    "SCHED_FIFO adaptive": dict(replay_rt_prio=10, replay_spin="adaptive")}
        for k in range(a.reps):
            for name, kw in variants.items():
                r = one(f"cmp{k}_{name.replace(' ', '_')}", out, sut="hftos", accel="tcg", dataset=feed,
                        rate=100_000.0, max_count=64, **kw)
                r["case"] = f"{name} #{k + 1}"
                rows.append(r)
                print(fmt(r), flush=True)
    if a.sweep:
        sfeed = out / f"synth-{a.sweep_messages}-seed{a.seed}.itch"
        if not sfeed.exists():
            synth.generate(sfeed, a.sweep_messages, seed=a.seed)
        sweep(a, out, sfeed)
    (out / "replay-bench.json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"\nload average at end {os.getloadavg()}; every run directory under {out}")


def verdict(r: dict) -> str:
    """Why a sweep point failed: the SUT dropped, or the capture did."""
    if r["error"] and "capture is incomplete" in r["error"]:
        return "capture drop (dumpcap missed frames: no figure)"
    return "RX drop"


def sweep(a, out: Path, feed: Path) -> None:
    """Per SUT (hftos in the guest, baselines on the host): --sweep-points
    rates from --sweep-start, each --sweep-step times the last, until an RX
    drop (a datagram missing from the capture, a SUT RX-missed/no-buffer
    counter, or orders not golden-equal); the knee is the highest rate below
    which every rate had wire p99.9 < 1 ms (the max where the run has too
    few orders for a p99.9)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    print(f"\n3. rate sweep on {feed.name}, packing 64: highest rate with no RX drop and wire "
          "p99.9 < 1 ms")
    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for sut in a.sweep_suts.split(","):
        kw = {} if sut == "hftos" else {"where": "host"}
        pts, knee, passed = [], None, True
        for rate in [a.sweep_start * a.sweep_step ** k for k in range(a.sweep_points)]:
            r = one(f"sweep_{sut}_{int(rate)}", out, sut=sut, accel="tcg", dataset=feed, rate=rate,
                    max_count=64, **kw)
            tail = r["wire_p999"] if r["wire_p999"] is not None else r["wire_max"]
            drop = (r["error"] is not None or not r["orders_equal"] or r["rx_missed"]
                    or (r["md_frames"] or 0) < (r["sent"] or 0))
            ok = not drop and tail is not None and tail < 1e6
            pts.append((rate, tail))
            e = (r["pacing"].get("error_ns") or {}).get("p99")
            shown = "-" if tail is None else f"{tail / 1e3:,.0f} us"
            print(f"{sut:<14} {rate:>10,.0f} msg/s: wire p99.9 {shown}"
                  f"{'' if r['wire_p999'] is not None else ' (max: too few orders)'}, pacing p99 "
                  f"{'-' if e is None else f'{e / 1e3:,.1f} us'}, "
                  f"{'ok' if ok else verdict(r) if drop else 'p99.9 >= 1 ms'}"
                  f"{'' if not r['error'] else ' (' + r['error'][:80] + ')'}, load {r['load']:.1f}",
                  flush=True)
            if drop:  # past an RX drop the latency says nothing more
                break
            passed = passed and ok
            if passed:
                knee = rate
        ax.plot([x for x, y in pts if y is not None], [y / 1e3 for x, y in pts if y is not None],
                "o-", label=f"{sut} (knee {'none' if knee is None else f'{knee:,.0f}'})")
        print(f"{sut}: knee {'none' if knee is None else f'{knee:,.0f} msg/s'}")
    ax.axhline(1000, color="tab:red", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("asked rate, msg/s (packing 64)")
    ax.set_ylabel("wire tick-to-trade p99.9 (max if < 1000 orders), us")
    ax.set_title("rate sweep (HFT-OS under TCG, baselines on the host; shared 2-core host)")
    ax.legend()
    fig.savefig(out / "knee.png", dpi=90)
    print(f"knee plot: {out / 'knee.png'}")


if __name__ == "__main__":
    main()
