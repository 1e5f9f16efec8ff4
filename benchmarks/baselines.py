"""HFT-OS against the Linux baselines: the study of issue 6 in one run.

Runs `hftlab.experiment.study` twice on the same feed, NIC and rate, each SUT in the
Debian guest under the same QEMU as HFT-OS, repetitions interleaved (rep 1
of every SUT, then rep 2 ...) so that slow drifts of the host hit them alike:

1. under TCG (wall clock): for each SUT p50, p99, p99.9 and max of wire_ns
   (capture on the tap: order frame minus tick frame) and internal_ns (the
   SUT's own tsc_rx..tsc_tx; where each span starts and ends is printed), all
   repetitions pooled, the ratios HFT-OS / baseline under them, and the
   poll-loop hiccups each SUT's core saw before the feed. Then the issue's
   goals: HFT-OS wire p50 <= 0.5x and p99.9 <= 0.3x linux-socket's; HFT-OS
   wire p99.9 <= linux-dpdk's.
2. under TCG-icount (-icount shift=0: the guest TSC counts instructions):
   internal_cycles are the instruction counts of each SUT's path, free of
   host noise. HFT-OS's repeat to the instruction run to run; a Linux
   guest's repeat except where its kernel took an interrupt (the timer
   tick) inside the span. The wall-clock figures of this pass mean
   little. First on the datagrams of pass 1 (the engine's work on up to 64
   messages dominates), then with one message per datagram on the first
   --tick-messages messages: the instructions of one tick's whole path, NIC
   driver, kernel or none, included.

Every pass runs once per NIC of --nics (QEMU's e1000, virtio-net-pci and igb
models), each NIC's studies in turn, the same feed for all; the per-NIC goals
of the NIC issue (virtio: HFT-OS wire p50 <= 15 us and <= 0.5x linux-dpdk's at
p50 and p99.9) are checked where they apply, and a closing table puts every
SUT's wire figures on every NIC side by side.

    python benchmarks/baselines.py [--reps 3] [--icount-reps 1] [--tick-messages 20000]
        [--tick-rate 2000] [--nics e1000,virtio,igb]
        [--suts hftos,linux-socket,linux-dpdk] [--messages 200000] [--seed 7]
        [--dataset FILE] [--rate 20000] [--max-count 64] [--out DIR]

The feed is a seeded synthetic ITCH 5.0 session (hftlab.model.synth) large enough
for a p99.9 over the pooled orders, unless --dataset names a file. Timings
under TCG are noisy and the host may be shared: compare the figures of one
invocation side by side; the icount figures are not noisy.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftlab.errors import RunError  # noqa: E402
from hftlab.model import synth  # noqa: E402
from hftlab.lab.baselines import INTERNAL_SPAN  # noqa: E402
from hftlab.analysis.latency import load_run  # noqa: E402
from hftlab.experiment.study import StudySpec, format_table, study  # noqa: E402

GOALS = (  # (baseline, quantile, HFT-OS / baseline at most)
    ("linux-socket", "p50", 0.5),
    ("linux-socket", "p99.9", 0.3),
    ("linux-dpdk", "p99.9", 1.0),
)
#: Goals of the NIC issue, per NIC: (baseline, quantile, ratio at most).
NIC_GOALS = {
    "virtio": (("linux-dpdk", "p50", 0.5), ("linux-dpdk", "p99.9", 0.5)),
}
#: HFT-OS's own wire p50 at most (ns), per NIC.
NIC_P50_GOAL_NS = {"virtio": 15_000}


def _info(run_dir: Path) -> dict:
    return load_run(run_dir).info


def _progress(stage: str, frac: float) -> None:
    print(f"  [{frac:5.1%}] {stage}", file=sys.stderr, flush=True)


def _goals(res, nic: str) -> list[dict]:
    by = {(r["baseline"], r["column"], r["quantile"]): r for r in res.ratios.to_pylist()}
    out = []
    for base, q, limit in GOALS + NIC_GOALS.get(nic, ()):
        r = by.get((base, "wire_ns", q))
        if r is None or r["ratio"] is None:
            continue
        out.append({"baseline": base, "quantile": q, "limit": limit, "ratio": r["ratio"],
                    "hftos_ns": r["reference"], "baseline_ns": r["value"],
                    "met": r["ratio"] <= limit})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="TCG repetitions (interleaved; 0: skip)")
    ap.add_argument("--icount-reps", type=int, default=1, help="TCG-icount repetitions (0: skip)")
    ap.add_argument("--max-count", type=int, default=64,
                    help="ITCH messages per MoldUDP64 datagram at most (TCG and icount passes)")
    ap.add_argument("--tick-rate", type=float, default=2_000.0,
                    help="rate of the per-tick pass: one datagram per message, and under "
                         "icount the kernel baselines fall behind 20k datagrams/s")
    ap.add_argument("--tick-messages", type=int, default=20_000,
                    help="messages of the per-tick icount pass (one message per datagram: "
                         "the instructions of one tick's path; 0: skip)")
    ap.add_argument("--suts", default="hftos,linux-socket,linux-dpdk")
    ap.add_argument("--nics", default="e1000",
                    help="comma-separated NIC models (e1000, virtio, igb), each in turn")
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--messages", type=int, default=200_000,
                    help="synthetic feed size (without --dataset)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=20_000.0, help="ITCH messages per second")
    ap.add_argument("--hiccups", type=float, default=1.0, help="gap recorder seconds per run")
    ap.add_argument("--out", type=Path, default=None, help="keep the studies here")
    args = ap.parse_args()
    suts = tuple(s.strip() for s in args.suts.split(",") if s.strip())
    nics = tuple(dict.fromkeys(s.strip() for s in args.nics.split(",") if s.strip()))

    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="hftlab-bl-")
        out = Path(tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset
    if dataset is None:
        dataset = out / f"synth-{args.messages}-s{args.seed}.itch"
        synth.generate(dataset, args.messages, seed=args.seed)
    print(f"# baselines  dataset={dataset.name} suts={','.join(suts)} nics={','.join(nics)} "
          f"rate={args.rate:g} msg/s "
          f"reps={args.reps} icount_reps={args.icount_reps}")
    print(f"# host: {platform.node()} {platform.platform()}")

    summary: dict = {"suts": suts, "nics": nics, "dataset": dataset.name}
    for nic in nics:
        summary[nic] = per_nic = {}
        _nic_passes(args, suts, nic, dataset, out / nic, per_nic)
    if args.reps > 0 and len(nics) > 1:
        _nic_table(suts, nics, summary)
    print(json.dumps(summary, default=str))
    if tmp is not None:
        tmp.cleanup()
    else:
        print(f"# studies kept in {out}")


def _nic_passes(args, suts, nic: str, dataset: Path, out: Path, summary: dict) -> None:
    """The TCG, TCG-icount and per-tick passes on one NIC. A pass whose run
    fails (a SUT's orders differ from the golden model, say) is reported
    with its cause and the next pass runs: one SUT that cannot keep up on
    one NIC does not cost the other figures."""
    print(f"\n# ===== NIC {nic} =====")
    for name, fn in (("tcg", _tcg_pass), ("icount", _icount_passes)):
        try:
            fn(args, suts, nic, dataset, out, summary)
        except RunError as e:
            print(f"\n## {nic}, {name} pass FAILED: {e}")
            summary[f"{name}_failed"] = str(e)


def _icount_passes(args, suts, nic: str, dataset: Path, out: Path, summary: dict) -> None:
    if args.icount_reps > 0:
        t0 = time.monotonic()
        ispec = StudySpec(suts=suts, reps=args.icount_reps, accel="tcg-icount", nic=nic,
                          dataset=dataset, rate=args.rate or None, max_count=args.max_count,
                          hiccups_s=0)
        ires = study(ispec, out / "icount", progress=_progress)
        print(f"\n## {nic}, TCG-icount, <= {args.max_count} messages per datagram: "
              f"internal_cycles are instructions, repetitions pooled "
              f"({time.monotonic() - t0:.0f} s)\n")
        print(format_table(ires))
        summary["icount"] = {"figures": ires.figures.to_pylist(), "ratios": ires.ratios.to_pylist()}
    if args.tick_messages > 0:
        t0 = time.monotonic()
        tspec = StudySpec(suts=suts, reps=1, accel="tcg-icount", nic=nic, dataset=dataset,
                          messages=args.tick_messages, rate=args.tick_rate, max_count=1,
                          hiccups_s=0)
        tres = study(tspec, out / "icount-tick", progress=_progress)
        print(f"\n## {nic}, TCG-icount, one message per datagram ({args.tick_messages} messages "
              f"at {args.tick_rate:g}/s): instructions of one tick's path "
              f"({time.monotonic() - t0:.0f} s)\n")
        print(format_table(tres))
        summary["icount_tick"] = {"figures": tres.figures.to_pylist(),
                                  "ratios": tres.ratios.to_pylist()}


def _nic_table(suts, nics, summary: dict) -> None:
    """Every SUT's wire_ns quantiles on every NIC, side by side (TCG pass)."""
    qs = ("p50", "p99", "p99.9", "max")
    print("\n## wire_ns per NIC (TCG, repetitions pooled; ns)\n")
    print("| SUT | NIC | " + " | ".join(qs) + " | ready s (median, min-max) |")
    print("| --- | --- | " + " | ".join("---" for _ in qs) + " | --- |")
    for sut in suts:
        for nic in nics:
            if "tcg" not in summary[nic]:
                continue
            rows = [r for r in summary[nic]["tcg"]["figures"]
                    if r.get("sut") == sut and r.get("column") == "wire_ns"]
            if not rows:
                continue
            r = rows[0]
            cells = " | ".join(f"{r[q]:,.0f}" if r.get(q) is not None else "-" for q in qs)
            ready = sorted(summary[nic]["tcg"]["ready_s"][sut])
            print(f"| {sut} | {nic} | {cells} | {ready[len(ready) // 2]:.2f} "
                  f"({ready[0]:.2f}-{ready[-1]:.2f}) |")


def _tcg_pass(args, suts, nic: str, dataset: Path, out: Path, summary: dict) -> None:
    if args.reps <= 0:
        return
    t0 = time.monotonic()
    spec = StudySpec(suts=suts, reps=args.reps, accel="tcg", nic=nic, dataset=dataset,
                     rate=args.rate or None, max_count=args.max_count, hiccups_s=args.hiccups)
    res = study(spec, out / "tcg", progress=_progress)
    info = _info(res.runs[suts[0]][0])
    env = info["environment"]
    print(f"# {nic} tcg: cpu={env['cpu']}; qemu={env['qemu']}; git={env['git']}; "
          f"{time.monotonic() - t0:.0f} s")
    ready_by_sut = {}
    for sut in suts:
        i = _info(res.runs[sut][0])
        if "guest" in i:
            g = i["guest"]
            print(f"# {sut}: guest {g['kernel_package']} {g['kernel_version']}, boot {g['boot']}, "
                  f"modules {g['modules']}")
        print(f"# {sut} internal span: {INTERNAL_SPAN.get(sut, '?')}")
        ready = [_info(d)["phases_s"]["ready"] for d in res.runs[sut]]
        ready_by_sut[sut] = ready
        print(f"# {sut} ready (QEMU start to ready line): median {sorted(ready)[len(ready) // 2]:.2f} s "
              f"(min {min(ready):.2f}, max {max(ready):.2f})")
    print(f"\n## {nic}, TCG (wall clock), repetitions pooled; ns\n")
    print(format_table(res))
    goals = _goals(res, nic)
    p50_goal = NIC_P50_GOAL_NS.get(nic)
    own = [r for r in res.figures.to_pylist()
           if r.get("sut") == "hftos" and r.get("column") == "wire_ns"]
    if p50_goal is not None and own and own[0].get("p50") is not None:
        print(f"  HFT-OS wire p50 on {nic}: {own[0]['p50']:,.0f} ns (<= {p50_goal:,}: "
              f"{'met' if own[0]['p50'] <= p50_goal else 'NOT met'})")
    print("\ngoals (wire_ns, HFT-OS / baseline):")
    for g in goals:
        print(f"  {g['quantile']:>6} vs {g['baseline']:<13} {g['ratio']:.3f} (<= {g['limit']}: "
              f"{'met' if g['met'] else 'NOT met'}; {g['hftos_ns']:,.0f} vs {g['baseline_ns']:,.0f} ns)")
    summary["tcg"] = {"figures": res.figures.to_pylist(), "ratios": res.ratios.to_pylist(),
                      "hiccups": res.hiccup_summary.to_pylist(), "goals": goals,
                      "ready_s": ready_by_sut}


if __name__ == "__main__":
    main()
