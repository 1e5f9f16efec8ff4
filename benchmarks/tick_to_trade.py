"""Tick-to-trade of HFT-OS on the bundled data, under TCG and TCG-icount,
per NIC, with the internal span split into decide and doorbell.

For each NIC and accelerator, runs the full experiment (`hftlab run`) a few
times (repetitions interleaved: rep 1 of every NIC and accel, then rep 2 ...)
and prints, with sample counts:
  - internal: tsc_tx - tsc_rx in cycles (under -icount shift=0 the guest TSC
    counts instructions, so these are instruction counts, and must be the
    same figure at every repetition), and in ns;
  - decide: tsc_doorbell - tsc_rx (the software path up to the TX doorbell)
    and doorbell: tsc_tx - tsc_doorbell (the doorbell write until it
    returns), in instructions under tcg-icount and ns under tcg;
  - wire_ns: capture timestamps on the tap, order frame minus tick frame;
  - boot phases: QEMU start to the OS's ready line, and the OS's own phases.
It ends with one table of decide and doorbell p50/p99/p99.9/max per NIC and
accel, side by side (a tail percentile is '-' when fewer samples back it:
p99 needs 100 orders, p99.9 1,000; RITCH gives ~30 per run).
Timings here are noisy: compare ratios measured side by side in one run.

    python benchmarks/tick_to_trade.py [--reps 3] [--nics e1000,virtio,igb]
        [--accels tcg,tcg-icount] [--dataset PATH] [--rate 20000] [--max-count 64]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.analysis.latency import format_summary, percentiles  # noqa: E402
from hftlab.experiment.run import DEFAULT_DATASET, RunSpec, run  # noqa: E402

SPLIT_QS = ("p50", "p99", "p99.9", "max")


def _cell(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--rate", type=float, default=20_000.0)
    ap.add_argument("--accels", default="tcg,tcg-icount")
    ap.add_argument("--nics", default="e1000", help="comma-separated: e1000,virtio,igb")
    ap.add_argument("--max-count", type=int, default=64,
                    help="ITCH messages per MoldUDP64 datagram (1: the span is one tick's path)")
    args = ap.parse_args()
    accels, nics = args.accels.split(","), args.nics.split(",")
    print(f"# tick_to_trade  dataset={args.dataset.name} rate={args.rate:g} msg/s reps={args.reps} "
          f"messages/datagram<={args.max_count} nics={args.nics} accels={args.accels}")
    print(f"# host: {platform.node()} {platform.platform()}")
    cols = ("internal_cycles", "internal_ns", "decide_cycles", "decide_ns", "doorbell_cycles",
            "doorbell_ns", "wire_ns")
    data = {(n, a): {c: [] for c in cols} | {"ready": []} for n in nics for a in accels}
    with tempfile.TemporaryDirectory(prefix="hftlab-t2t-") as tmp:
        for rep in range(args.reps):
            for nic in nics:
                for accel in accels:
                    res = run(RunSpec(accel=accel, nic=nic, dataset=args.dataset, rate=args.rate,
                                      max_count=args.max_count, out=Path(tmp) / f"{nic}-{accel}-{rep}"))
                    lat, d = res.latency, data[(nic, accel)]
                    for c in cols:
                        d[c].append(lat.column(c).drop_null().to_numpy())
                    d["ready"].append(res.info["phases_s"]["ready"])
                    if rep == 0:
                        env = res.info["environment"]
                        print(f"# {nic} {accel}: {res.info['spec']['accel_reason']}; cpu={env['cpu']}; "
                              f"qemu={env['qemu']}; git={env['git']}")
                        print(f"  boot phases (guest ms after the first stamp): {res.info['boot_phases_ms']}")
    summary = {}
    for (nic, accel), d in data.items():
        unit = "instr" if accel == "tcg-icount" else "cycles"
        cat = {c: np.concatenate(d[c]) for c in cols}
        print(f"## {nic} {accel}")
        for span in ("internal", "decide", "doorbell"):
            print(format_summary(f"{span}", percentiles(cat[f"{span}_cycles"]), unit))
            print(format_summary(f"{span}", percentiles(cat[f"{span}_ns"]), "ns"))
        print(format_summary("wire", percentiles(cat["wire_ns"]), "ns"))
        ready = d["ready"]
        print(f"  ready after QEMU start: median {np.median(ready):.3f} s "
              f"(min {min(ready):.3f}, max {max(ready):.3f}) over {len(ready)} boots")
        if accel == "tcg-icount":
            same = all(np.array_equal(d["internal_cycles"][0], c) and np.array_equal(d["decide_cycles"][0], dc)
                       for c, dc in zip(d["internal_cycles"][1:], d["decide_cycles"][1:]))
            print(f"  icount: per-order instruction counts identical across repetitions: {same}")
        summary[f"{nic}/{accel}"] = {
            "internal": percentiles(cat["internal_cycles"]), "decide": percentiles(cat["decide_cycles"]),
            "doorbell": percentiles(cat["doorbell_cycles"]), "decide_ns": percentiles(cat["decide_ns"]),
            "doorbell_ns": percentiles(cat["doorbell_ns"]), "wire_ns": percentiles(cat["wire_ns"]),
            "ready_s": ready}
    # The split side by side: instructions under tcg-icount, ns under tcg.
    print("\n| NIC | accel | unit | orders | decide p50 | p99 | p99.9 | max | doorbell p50 | p99 | p99.9 | max "
          "| doorbell share of internal, p50 |")
    print("| --- | --- | --- | --- |" + " --- |" * 9)
    for nic in nics:
        for accel in accels:
            s = summary[f"{nic}/{accel}"]
            icount = accel == "tcg-icount"
            dec, door = (s["decide"], s["doorbell"]) if icount else (s["decide_ns"], s["doorbell_ns"])
            d = data[(nic, accel)]
            share = np.median(np.concatenate(d["doorbell_cycles"]) / np.concatenate(d["internal_cycles"]))
            print(f"| {nic} | {accel} | {'instructions' if icount else 'ns'} | {dec['count']} | "
                  + " | ".join(_cell(dec[q]) for q in SPLIT_QS) + " | "
                  + " | ".join(_cell(door[q]) for q in SPLIT_QS) + f" | {share:.1%} |")
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
