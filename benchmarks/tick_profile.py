"""Where HFT-OS's triggering ticks spend their instructions, by source line (issue 16).

    python benchmarks/tick_profile.py [--nic e1000|virtio|igb] [--dataset ITCH_FILE]
        [--strategy FILE] [--rate 2000] [--top 25] [--listing]

One `hftlab run` under tcg-icount (-icount shift=0: the guest TSC counts
instructions), one ITCH message per datagram, with a QEMU TCG plugin
(benchmarks/c/tick_plugin.c, built here with cc) that records every guest
instruction from the RX stamp (`lfence; rdtsc` in trade_poll, tsc_rx) to the
stamp before the TX doorbell (tsc_doorbell): the "decide" span of every
order. The span lengths it counts must equal the run's decide_cycles (the
check is printed), so the profile is the instrument's own figure, not an
estimate. Addresses are mapped to functions and lines through a twin of the
runtime built with -g (same flags otherwise; its .text is checked to be
byte-identical to the image's), innermost inlined function first, so code
the compiler inlined into the poll loop is still named.

Printed: decide per order (median, min, max), instructions per order by
innermost function and by source line (averaged over the orders), and with
--listing the median order's instructions in execution order. Needs root
(tap), QEMU built with plugin support (Debian's is), cc and binutils.
"""
from __future__ import annotations

import argparse
import collections
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def die(msg: str) -> None:
    raise SystemExit(f"tick_profile: {msg}")


def sh(cmd: list[str], **kw) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        die(f"{' '.join(cmd[:3])} ... failed:\n{(p.stdout + p.stderr)[-2000:]}")
    return p.stdout


def text_bytes(elf: Path, tmp: Path) -> bytes:
    out = tmp / f"{elf.stem}-{abs(hash(str(elf)))}.text"
    sh(["objcopy", "-O", "binary", "--only-section=.text", str(elf), str(out)])
    return out.read_bytes()


def debug_twin(bdir: Path, strategy: Path | None, tmp: Path) -> Path:
    """runtime.elf rebuilt with -g into tmp; its code must be the image's."""
    flags = sh(["make", "-s", "-C", str(ROOT / "kernel_src"), "--eval",
                "print-kflags: ; @echo $(CORE_KFLAGS)", "print-kflags"]).strip()
    twin = tmp / "g"
    cmd = ["make", "-s", "-C", str(ROOT / "kernel_src"), f"BUILD={twin}", f"CORE_KFLAGS={flags} -g",
           str(twin / "runtime.elf")]
    if strategy is not None:
        cmd.append(f"STRATEGY={strategy}")
    sh(cmd)
    elf = twin / "runtime.elf"
    if text_bytes(elf, tmp) != text_bytes(bdir / "runtime.elf", tmp):
        die(f"the -g twin's .text differs from {bdir / 'runtime.elf'}: cannot map addresses")
    return elf


def inline_chains(elf: Path, addrs: list[int]) -> dict[int, list[tuple[str, str]]]:
    """address -> [(function, file:line), ...], innermost inlined first."""
    out = sh(["addr2line", "-a", "-f", "-i", "-e", str(elf)] + [hex(a) for a in addrs]).splitlines()
    info: dict[int, list[tuple[str, str]]] = {}
    cur = None
    k = 0
    while k < len(out):
        if out[k].startswith("0x"):
            cur = int(out[k], 16)
            info[cur] = []
            k += 1
            continue
        loc = out[k + 1].split(" ")[0]
        info[cur].append((out[k], loc.rsplit("/", 1)[-1]))
        k += 2
    return info


def marks(elf: Path) -> tuple[list[int], list[int], int, int]:
    """(starts, stops, lo, hi): the rdtsc of the RX stamp in trade_poll, the
    rdtsc of the stamp before a TX doorbell (a driver's tx_commit), .text."""
    dis = sh(["objdump", "-d", "--no-show-raw-insn", str(elf)])
    rdtsc = [int(m.group(1), 16) for m in re.finditer(r"^\s+([0-9a-f]+):\s+rdtsc\b", dis, re.M)]
    chains = inline_chains(elf, rdtsc)
    # the RX stamp is the ordered read (lfence; rdtsc) in trade_poll; its
    # other reads are the idle loop's
    starts = [a for a in rdtsc if any(f == "trade_poll" for f, _ in chains[a])
              and any(f == "tsc_read_ordered" for f, _ in chains[a])
              and not any("tx_commit" in f or "emit" in f for f, _ in chains[a])]
    stops = [a for a in rdtsc if any("tx_commit" in f for f, _ in chains[a])]
    if not starts or not stops or len(starts) + len(stops) > 64:
        die(f"RX stamps {len(starts)}, doorbell stamps {len(stops)} (1..64 each) among "
            f"{len(rdtsc)} rdtsc in {elf}: did trade_poll or the drivers' tx_commit change names?")
    hdr = sh(["objdump", "-h", str(elf)])
    m = re.search(r"\s\.text\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", hdr)
    if not m:
        die(f"no .text in {elf}")
    lo = int(m.group(3), 16)
    return starts, stops, lo, lo + int(m.group(1), 16)


def plugin(tmp: Path) -> Path:
    so = tmp / "tick_plugin.so"
    cc = shutil.which("cc") or die("cc not found")
    sh([cc, "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", str(so),
        str(ROOT / "benchmarks" / "c" / "tick_plugin.c")])
    return so


def read_ticks(path: Path) -> list[list[int]]:
    ticks, lines = [], path.read_text().splitlines()
    for i in range(0, len(lines) - 1, 2):
        n = int(lines[i].split()[1])
        addrs = [int(x, 16) for x in lines[i + 1].split()]
        if len(addrs) != n:
            die(f"{path}: a tick of {n} instructions lists {len(addrs)}")
        ticks.append(addrs)
    return ticks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nic", default="e1000", choices=("e1000", "virtio", "igb"))
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--strategy", type=Path, default=None, help="a strategy C file (default: the trigger)")
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--listing", action="store_true", help="the median order's instructions in order")
    args = ap.parse_args(argv)
    from hftlab.experiment.run import DEFAULT_DATASET, RunSpec, run
    from hftlab.lab.build import build_os, strategy_build_dir
    from hftlab.model import core

    strategy = args.strategy.resolve() if args.strategy else None
    build_os(strategy=strategy)
    _, bdir = strategy_build_dir(strategy)
    with tempfile.TemporaryDirectory(prefix="hftlab-tickprof-") as t:
        tmp = Path(t)
        elf = debug_twin(bdir, strategy, tmp)
        starts, stops, lo, hi = marks(elf)
        so, out = plugin(tmp), tmp / "ticks.txt"
        popt = (f"{so},lo={lo:#x},hi={hi:#x},start={':'.join(hex(a) for a in starts)},"
                f"stop={':'.join(hex(a) for a in stops)},out={out}")
        cfg = core.EngineConfig(strategy=core.StrategyConfig(file=str(strategy))) if strategy \
            else core.EngineConfig()
        res = run(RunSpec(accel="tcg-icount", nic=args.nic, dataset=args.dataset or DEFAULT_DATASET,
                          rate=args.rate, max_count=1, config=cfg, out=tmp / "run",
                          qemu_args=("-plugin", popt)))
        if not out.exists():
            die(f"the plugin wrote nothing ({out}); QEMU's stderr is in {tmp / 'run'}")
        ticks = read_ticks(out)
        decide = sorted(int(x) for x in res.latency.column("decide_cycles").drop_null().to_pylist())
        ours = sorted(len(x) for x in ticks)
        # Ticks that are not orders (an ARP reply stamped and sent) are not in decide_cycles.
        pool = collections.Counter(decide)
        kept = []
        for tk in ticks:
            if pool[len(tk)] > 0:
                pool[len(tk)] -= 1
                kept.append(tk)
        print(f"tick_profile: {args.nic}, {res.info['spec']['dataset']}, {len(decide)} orders; "
              f"plugin spans {len(ticks)}, {len(kept)} equal to the run's decide_cycles "
              f"({'all' if len(kept) == len(decide) else 'NOT all'} orders matched)")
        if not kept:
            die(f"no span matches: plugin {ours[:10]}..., run {decide[:10]}...")
        lens = [len(x) for x in kept]
        print(f"decide per order (instructions): median {statistics.median(lens):.0f}, "
              f"min {min(lens)}, max {max(lens)}")
        counts = collections.Counter(a for tk in kept for a in tk)
        info = inline_chains(elf, sorted(counts))
        n = len(kept)
        by_fn: collections.Counter = collections.Counter()
        by_line: collections.Counter = collections.Counter()
        for a, c in counts.items():
            fn, loc = (info.get(a) or [("?", "?")])[0]
            by_fn[fn] += c
            by_line[f"{loc} {fn}"] += c
        print(f"\n{'instructions/order':>18}  innermost function (inlined code named by its own function)")
        for fn, c in by_fn.most_common(args.top):
            print(f"{c / n:18.1f}  {fn}")
        print(f"\n{'instructions/order':>18}  source line")
        for ln, c in by_line.most_common(args.top):
            print(f"{c / n:18.1f}  {ln}")
        if args.listing:
            med = sorted(kept, key=len)[n // 2]
            dis = {int(m.group(1), 16): m.group(2) for m in re.finditer(
                r"^\s+([0-9a-f]+):\s+(.*)$", sh(["objdump", "-d", "--no-show-raw-insn", str(elf)]), re.M)}
            print(f"\nthe median order's {len(med)} instructions:")
            for a in med:
                fn, loc = (info.get(a) or [("?", "?")])[0]
                print(f"  {a:x}  {fn[:26]:26} {loc[:22]:22} {dis.get(a, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
