"""HFT-OS under KVM's PVM flavour vs TCG vs the native Linux baseline (issue 15).

One run side by side, on this machine (timings are noisy on a shared box:
read the ratios, and the medians with min/max):

  1. the decide span per order (DD bit seen -> order frame complete in the
     TX buffer, before the doorbell: latency.parquet's decide_ns where the
     tslog records it; before that split existed, the internal span,
     tsc_tx - tsc_rx, which includes the doorbell) under PVM-KVM and TCG,
     p50/p99/p99.9/max in ns, with the instructions of the same span from
     tcg-icount beside them (ns / instructions: the cost of an instruction);
  2. wire tick-to-trade (capture clock on the tap) of HFT-OS under PVM-KVM
     and TCG and of `linux-dpdk --where host` (native, af_packet PMD), and
     where the time goes: decide, doorbell (when recorded), the rest;
  3. hiccups per second of poll loop: HFT-OS under PVM-KVM vs linux-dpdk on
     the host, same core (vcpu_core), same threshold: count, per second,
     longest, % of the span lost.

Feeds: the bundled RITCH day and a synthetic feed (hftlab.model.synth,
600k messages, seed 3: ~3,000 orders), each one message per datagram and
with default packing (<= 64 per datagram).

    python benchmarks/pvm.py [--synth-messages 600000] [--rate 10000] [--rate-packed 40000]
        [--packings 1,64] [--feeds ritch,synth] [--hiccups-s 5] [--threshold-ns 1000]
        [--skip-baseline]
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

from hftlab.analysis.latency import percentiles  # noqa: E402
from hftlab.experiment.run import DEFAULT_DATASET, RunSpec, run  # noqa: E402
from hftlab.lab.vm import choose_accel  # noqa: E402
from hftlab.model import synth  # noqa: E402

QS = (50.0, 99.0, 99.9)


def _col(lat, *names):
    """The first of `names` that the latency table has, with its values."""
    for n in names:
        if n in lat.column_names:
            v = lat.column(n).drop_null().to_numpy()
            if len(v):
                return n, v.astype(np.float64)
    return None, np.array([])


def _cells(v: np.ndarray) -> str:
    if not len(v):
        return f"{'-':>9} {'-':>9} {'-':>9} {'-':>9}"
    p = np.percentile(v, QS, method="inverted_cdf")
    return " ".join(f"{x:>9,.0f}" for x in (*p, v.max()))


def _hft(spec_kw: dict, accel: str, out: Path, sut: str = "hftos", where: str = "guest"):
    """One run, or None with the reason printed (the other figures go on)."""
    try:
        res = run(RunSpec(sut=sut, where=where, accel=accel, out=out, **spec_kw))
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal
        print(f"  !! {sut} {accel} {out.name}: {type(exc).__name__}: {str(exc)[:300]}")
        return None
    if not res.info["orders"]["equal"]:
        print(f"  !! {out.name}: orders differ from the golden model ({sut}, {accel})")
        return None
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth-messages", type=int, default=600_000)
    ap.add_argument("--rate", type=float, default=10_000.0,
                    help="ITCH messages per second, one message per datagram (TCG keeps up with ~10k)")
    ap.add_argument("--rate-packed", type=float, default=40_000.0,
                    help="ITCH messages per second with more than one message per datagram")
    ap.add_argument("--packings", default="1,64", help="ITCH messages per datagram, comma separated")
    ap.add_argument("--hiccups-s", type=float, default=5.0)
    ap.add_argument("--threshold-ns", type=int, default=1000)
    ap.add_argument("--skip-baseline", action="store_true", help="no linux-dpdk --where host runs")
    ap.add_argument("--feeds", default="ritch,synth", help="ritch, synth or both")
    ap.add_argument("--drain-timeout", type=float, default=600.0,
                    help="s to wait for the SUT's end-of-run dump: under PVM it runs at emulated ring 0, "
                         "slow per order (3,000 orders overran 60 s)")
    args = ap.parse_args()
    pvm = choose_accel("auto", pvm_image=True)
    print(f"# pvm benchmark on {platform.node()} {platform.platform()} (a shared machine)")
    print(f"# auto for HFT-OS by PVH: {pvm.name}: {pvm.reason}")
    if pvm.name not in ("kvm", "kvm-pvm"):
        raise SystemExit("no KVM here: nothing to compare TCG with")
    summary: dict = {}
    with tempfile.TemporaryDirectory(prefix="hftlab-pvm-") as tmp:
        tmp = Path(tmp)
        feeds = {}
        if "ritch" in args.feeds:
            feeds["RITCH"] = DEFAULT_DATASET
        if "synth" in args.feeds:
            feed = tmp / "synth.itch"
            synth.generate(feed, args.synth_messages, seed=3)
            feeds[f"synth{args.synth_messages // 1000}k"] = feed
        for fname, path in feeds.items():
            for mc in (int(x) for x in args.packings.split(",")):
                kw = dict(dataset=path, rate=args.rate if mc == 1 else args.rate_packed, max_count=mc,
                          drain_timeout=args.drain_timeout)
                tag = f"{fname}, <= {mc} msg/datagram, {kw['rate']:g} msg/s"
                runs = {a: _hft(kw, a, tmp / f"{fname}-{mc}-{a}") for a in ("auto", "tcg", "tcg-icount")}
                base = None
                if not args.skip_baseline:
                    base = _hft(kw, "auto", tmp / f"{fname}-{mc}-dpdk", "linux-dpdk", "host")
                if any(r is None for r in runs.values()):
                    print(f"\n## {tag}: skipped (a run failed, above)")
                    continue
                n_orders = runs["auto"].info["orders"]["sut"]
                print(f"\n## {tag}: {n_orders} orders (golden-equal under every accel)")
                print(f"{'span':<34} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}")
                row = {}
                for a, label in (("auto", pvm.name), ("tcg", "tcg")):
                    lat = runs[a].latency
                    name, v = _col(lat, "decide_ns", "internal_ns")
                    print(f"{label + ' ' + str(name) + ' (ns)':<34} {_cells(v)}")
                    row[f"{label}_{name}"] = percentiles(v) if len(v) else None
                    dname, d = _col(lat, "doorbell_ns")
                    if dname:
                        print(f"{label + ' doorbell_ns (ns)':<34} {_cells(d)}")
                lat = runs["tcg-icount"].latency
                name, v = _col(lat, "decide_cycles", "internal_cycles")
                print(f"{'tcg-icount ' + str(name) + ' (instr)':<34} {_cells(v)}")
                row[f"icount_{name}"] = percentiles(v) if len(v) else None
                pv = _col(runs["auto"].latency, "decide_ns", "internal_ns")[1]
                if len(pv) and len(v):
                    print(f"  {pvm.name}: {np.median(pv) / np.median(v):.2f} ns per instruction at the median "
                          f"(TCG: {np.median(_col(runs['tcg'].latency, 'decide_ns', 'internal_ns')[1]) / np.median(v):.2f})")
                print(f"{'wire tick-to-trade':<34} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}")
                wires = [(pvm.name + " hftos", runs["auto"]), ("tcg hftos", runs["tcg"])]
                if base is not None:
                    wires.append(("linux-dpdk --where host", base))
                for label, r in wires:
                    _, w = _col(r.latency, "wire_ns")
                    print(f"{label + ' wire_ns':<34} {_cells(w)}")
                    row[f"wire_{label}"] = percentiles(w) if len(w) else None
                for label, r in wires[:2]:
                    lat = r.latency
                    w = np.median(_col(lat, "wire_ns")[1])
                    dn, dv = _col(lat, "decide_ns", "internal_ns")
                    bn, bv = _col(lat, "doorbell_ns")
                    dec = np.median(dv) if len(dv) else float("nan")
                    bell = np.median(bv) if len(bv) else 0.0
                    print(f"  {label} medians: wire {w:,.0f} ns = {dn} {dec:,.0f}"
                          + (f" + doorbell {bell:,.0f}" if bn else " (doorbell inside)")
                          + f" + the rest (NIC model, tap, capture) {w - dec - bell:,.0f}")
                summary[tag] = row
        print(f"\n## hiccups: poll loop {args.hiccups_s:g} s, threshold {args.threshold_ns} ns, "
              "host core of the SUT: vcpu_core 1")
        hk = dict(hiccups_s=args.hiccups_s, hiccup_threshold_ns=args.threshold_ns, rate=args.rate)
        hic = {pvm.name + " hftos": _hft(hk, "auto", tmp / "hic-pvm")}
        if not args.skip_baseline:
            hic["linux-dpdk --where host"] = _hft(hk, "auto", tmp / "hic-dpdk", "linux-dpdk", "host")
        print(f"{'':<26} {'iterations':>12} {'ns/iter':>8} {'gaps':>7} {'gaps/s':>9} {'max ns':>10} {'% lost':>8}")
        for label, r in hic.items():
            h = r.info.get("hiccups") if r is not None else None
            if not h:
                print(f"{label:<26} (no hiccup counters)")
                continue
            print(f"{label:<26} {h['iterations']:>12,} {h['ns_per_iteration']:>8.1f} {h['gaps']:>7,} "
                  f"{h['gaps_per_s']:>9.1f} {h['max_ns']:>10,} {100 * h['lost_fraction']:>8.4f}")
            summary[f"hiccups {label}"] = h
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
