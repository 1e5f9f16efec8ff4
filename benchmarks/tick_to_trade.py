"""Tick-to-trade of HFT-OS on the bundled data, under TCG and TCG-icount.

For each accelerator, runs the full experiment (`hftlab run`) a few times and
prints, with sample counts:
  - internal: tsc_tx - tsc_rx in cycles (under -icount shift=0 the guest TSC
    counts instructions, so these are instruction counts, and must be the
    same figure at every repetition), and in ns;
  - wire_ns: capture timestamps on the tap, order frame minus tick frame;
  - boot phases: QEMU start to the OS's ready line, and the OS's own phases.
Timings here are noisy: compare ratios measured side by side in one run.

    python benchmarks/tick_to_trade.py [--reps 3] [--dataset PATH] [--rate 20000]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--rate", type=float, default=20_000.0)
    ap.add_argument("--accels", default="tcg,tcg-icount")
    ap.add_argument("--max-count", type=int, default=64,
                    help="ITCH messages per MoldUDP64 datagram (1: the span is one tick's path)")
    args = ap.parse_args()
    print(f"# tick_to_trade  dataset={args.dataset.name} rate={args.rate:g} msg/s reps={args.reps} "
          f"messages/datagram<={args.max_count}")
    print(f"# host: {platform.node()} {platform.platform()}")
    summary = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-t2t-") as tmp:
        for accel in args.accels.split(","):
            per_rep_cycles, wire, internal, ready = [], [], [], []
            for rep in range(args.reps):
                res = run(RunSpec(accel=accel, dataset=args.dataset, rate=args.rate, max_count=args.max_count,
                                  out=Path(tmp) / f"{accel}-{rep}"))
                lat = res.latency
                cyc = lat.column("internal_cycles").drop_null().to_numpy()
                per_rep_cycles.append(cyc)
                wire.append(lat.column("wire_ns").drop_null().to_numpy())
                internal.append(lat.column("internal_ns").drop_null().to_numpy())
                ready.append(res.info["phases_s"]["ready"])
                if rep == 0:
                    env = res.info["environment"]
                    print(f"# {accel}: {res.info['spec']['accel_reason']}; cpu={env['cpu']}; "
                          f"qemu={env['qemu']}; git={env['git']}")
                    print(f"  boot phases (guest ms after the first stamp): {res.info['boot_phases_ms']}")
            unit = "instr" if accel == "tcg-icount" else "cycles"
            print(format_summary(f"{accel} int", percentiles(np.concatenate(per_rep_cycles)), unit))
            print(format_summary(f"{accel} int", percentiles(np.concatenate(internal)), "ns"))
            print(format_summary(f"{accel} wire", percentiles(np.concatenate(wire)), "ns"))
            print(f"  ready after QEMU start: median {np.median(ready):.3f} s "
                  f"(min {min(ready):.3f}, max {max(ready):.3f}) over {len(ready)} boots")
            if accel == "tcg-icount":
                same = all(np.array_equal(per_rep_cycles[0], c) for c in per_rep_cycles[1:])
                print(f"  icount: per-order instruction counts identical across repetitions: {same}")
            summary[accel] = {"internal": percentiles(np.concatenate(per_rep_cycles)),
                              "wire_ns": percentiles(np.concatenate(wire)), "ready_s": ready}
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
