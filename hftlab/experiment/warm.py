"""Compile every numba kernel ahead, so that no run waits for numba.

hftlab's kernels (capture scanning and decoding, the exact statistics, the
HdrHistogram recorder, the synthetic feed) are numba functions with
``cache=True``: the first call on a machine compiles them (about 30 s for the
capture kernels alone on a 2-core box) and writes the machine code beside the
sources (``__pycache__/*.nbi``, ``*.nbc``, or under ``NUMBA_CACHE_DIR``); every
later process loads it in milliseconds. `compile_all` makes that first call
at set-up time (``make setup`` runs ``python -m hftlab.cli.warm``), and
also builds matplotlib's font list and hftlab's bytecode, the other costs of
a first run.

A cached kernel is found again only for the same *signature*: the argument
types, including an array's dtype, layout and whether it is read-only (an
Arrow column's ``to_numpy()`` is read-only, a numpy copy is not). So the
warm-up drives each kernel the way the library does, through its public
entry points and on the same kinds of arrays: a pcapng written by hftlab's
own writer and a classic pcap read by `hftlab.capture.read` (as
`hftlab.experiment.steps.wire_events` reads a run's wire.pcapng), the join
into a latency table, `describe` on its Arrow columns and on plain int64 and
float64 arrays, histograms, latency over time, hiccups, the bootstrap, and a
few hundred messages of `hftlab.model.synth`.
"""
from __future__ import annotations

import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["WarmSummary", "compile_all", "kernels", "cache_counts"]

#: the demo's market-data and order ports, as the capture reader filters them
_MD_PORT, _ORDER_PORT = 30001, 40000


@dataclass
class WarmSummary:
    """What a warm-up did."""

    kernels: int  #: numba kernels of hftlab given a signature (inlined helpers excluded)
    signatures: int  #: signatures compiled or loaded
    compiled: int  #: signatures numba compiled (cache misses): written to the cache now
    loaded: int  #: signatures loaded from the cache (hits): compiled by an earlier warm-up
    compile_s: float  #: time numba spent compiling
    seconds: float  #: wall time of the whole warm-up
    untouched: list[str] = field(default_factory=list)  #: kernels left without a signature

    def line(self) -> str:
        cache = _cache_location()
        return (f"warm: {self.kernels} numba kernels, {self.signatures} signatures: "
                f"{self.compiled} compiled ({self.compile_s:.1f} s), {self.loaded} loaded from the "
                f"cache; {self.seconds:.1f} s in all; cache: {cache}")


def _cache_location() -> str:
    from numba.core import config

    return config.CACHE_DIR or "__pycache__ beside the sources"


def kernels() -> dict[str, object]:
    """Every numba dispatcher defined in an imported hftlab module, by
    qualified name (functions with inline="always" excluded: numba inlines
    them into their callers and caches them with the callers)."""
    from numba.core.registry import CPUDispatcher

    out: dict[str, object] = {}
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith("hftlab.") or mod is None:
            continue
        for name, obj in list(vars(mod).items()):
            if (isinstance(obj, CPUDispatcher) and getattr(obj, "__module__", None) == mod_name
                    and obj.targetoptions.get("inline", "never") != "always"):
                out[f"{mod_name}.{name}"] = obj
    return out


def cache_counts(dispatchers: dict[str, object] | None = None) -> dict[str, tuple[int, int]]:
    """(cache hits, cache misses) per kernel in this process: a miss is a
    signature numba compiled, a hit one it loaded from the cache."""
    ds = kernels() if dispatchers is None else dispatchers
    return {name: (sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
            for name, d in ds.items()}


# ---------------------------------------------------------------------- inputs
def _write_pcap(path: Path, frames: list[tuple[int, bytes]]) -> None:
    """A classic little-endian nanosecond pcap (Ethernet) of (ts_ns, frame)."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for ts, frame in frames:
            fh.write(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(frame), len(frame)))
            fh.write(frame)


def _sample_frames(work: Path) -> list[tuple[int, bytes]]:
    """Market-data and order frames as on the demo's link: a small synthetic
    ITCH feed packed into MoldUDP64, the golden model's orders for the bundled
    sample, each datagram and order in its Ethernet/IPv4/UDP frame."""
    from hftlab.experiment.spec import DEFAULT_DATASET
    from hftlab.lab import exchange
    from hftlab.model import core, synth

    feed_path = work / "feed.itch"
    synth.generate(feed_path, 300, seed=1)  # also compiles the synth kernels
    dataset = DEFAULT_DATASET if Path(DEFAULT_DATASET).exists() else feed_path
    host = exchange.Endpoint("02:48:46:54:4c:01", "10.201.0.1", _ORDER_PORT)
    guest = exchange.Endpoint("52:54:00:12:34:56", "10.201.0.2", _MD_PORT)
    md = exchange.pack_feed(dataset, messages=2000).frames(host, guest)
    ouch = core.golden(dataset, messages=2000).ouch
    n_orders = len(ouch) // 49
    orders = exchange.Feed(data=np.frombuffer(ouch, np.uint8).copy(),
                           offsets=np.arange(n_orders + 1, dtype=np.uint64) * 49,
                           counts=np.ones(n_orders, np.uint16), first_seq=1,
                           session=md.session).frames(guest, host)
    t0 = 1_700_000_000_000_000_000
    frames = [(t0 + 10_000 * i, md.packet(i)) for i in range(md.n_packets)]
    frames += [(t0 + 10_000 * md.n_packets + 3_000 * i, orders.packet(i)) for i in range(orders.n_packets)]
    frames += [(t0 + 10_000 * md.n_packets, md.packet(0))]  # the same tick, again: some order joins it
    return frames


def _write_erf(path: Path, frames: list[tuple[int, bytes]]) -> None:
    """Endace ERF Ethernet records (type 2, varying length: no padding), for
    the ERF scanner: 16-byte header (little-endian 32.32 fixed-point time,
    type, flags, big-endian rlen, lctr, wlen), the 2-byte Ethernet pad, the
    frame."""
    out = bytearray()
    for t_ns, f in sorted(frames, key=lambda fr: fr[0]):
        sec, ns = divmod(t_ns, 1_000_000_000)
        stamp = (sec << 32) | ((ns << 32) // 1_000_000_000)
        out += (struct.pack("<QBB", stamp, 2, 0x04) + struct.pack(">HHH", 18 + len(f), 0, len(f))
                + b"\0\0" + f)
    path.write_bytes(bytes(out))


# ---------------------------------------------------------------------- drivers
def _drive_capture(work: Path, frames: list[tuple[int, bytes]]):
    from hftlab import capture
    from hftlab.experiment import steps
    from hftlab.lab.net import write_pcapng

    ng, pc = work / "wire.pcapng", work / "wire.pcap"
    write_pcapng(ng, frames)
    _write_pcap(pc, sorted(frames, key=lambda f: f[0]))
    capture.read(pc)                     # classic pcap scanner
    capture.read(ng, trailer="auto")     # trailer and keyframe decoders
    erf = work / "wire.erf"
    _write_erf(erf, frames)
    if capture.read(erf).metadata["format"] != "erf":   # the ERF scanner
        raise RuntimeError("warm-up: the ERF sample was not read as ERF")
    return steps.wire_events(ng, _MD_PORT, _ORDER_PORT)  # as a run reads its wire.pcapng


def _drive_analysis(ticks, orders) -> None:
    from hftlab.analysis import kernels as K
    from hftlab.analysis import latency
    from hftlab.analysis.hdr import Histogram

    lat = latency.join(ticks, orders, None, None)
    # the columns as a run's analysis takes them (RunData.column); the plain
    # arrays below have the same types, so a sample without orders loses nothing
    cols = [lat.column("wire_ns").drop_null().to_numpy(), lat.column("t_wire_out").to_numpy()]
    rng = np.random.default_rng(1)
    ints = rng.integers(1_000, 5_000_000, 70_000).astype(np.int64)  # > 65536: more than one chunk
    floats = ints.astype(np.float64)
    arrays = []
    for a in cols + [ints, floats]:
        ro = np.array(a, copy=True)
        ro.setflags(write=False)  # Arrow columns come as read-only arrays
        arrays += [np.array(a, copy=True), ro]
    for a in arrays:
        latency.describe(a, histogram=True)
        latency.describe(a, method="linear")
        if a.dtype.kind == "i":
            Histogram.from_values(a).values_at_percentiles([50.0, 99.0])
    for v in (ints, floats):
        latency.over_time(np.sort(ints), v, 1_000_000)
        sa = np.sort(v)
        K.bootstrap_quantiles(sa, sa, [0.5, 0.99], 10, 1)
    ts = np.sort(ints)
    latency.hiccups(ts, 1_000_000)
    ts.setflags(write=False)  # as a column of a log
    latency.hiccups(ts, 1_000_000)


def _warm_rest() -> None:
    """The other first-run costs of a run: matplotlib's font list (built on its
    first import on a machine, in ~/.cache/matplotlib) and the bytecode of
    hftlab's modules (written on their first import)."""
    import compileall
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(4, 2))
    ax[0].set_title("warm-up")
    fig.suptitle("hftlab")
    fig.tight_layout()
    fig.savefig(io.BytesIO(), format="png", dpi=50)
    plt.close(fig)
    compileall.compile_dir(Path(__file__).resolve().parents[1], quiet=2)


def compile_all(workdir: str | Path | None = None) -> WarmSummary:
    """Drive every numba kernel of hftlab once on small inputs of the types
    the library passes, so numba compiles each and writes its cache (or
    loads it, when an earlier warm-up did). Returns what happened."""
    from numba.core import event

    t0 = time.perf_counter()
    compile_s = [0.0]

    def add(dur: float) -> None:
        compile_s[0] += dur

    with event.install_timer("numba:compile", add), tempfile.TemporaryDirectory(
            prefix="hftlab-warm-", dir=workdir) as tmp:
        work = Path(tmp)
        ticks, orders, _ = _drive_capture(work, _sample_frames(work))
        _drive_analysis(ticks, orders)
    _warm_rest()
    ks = kernels()
    counts = cache_counts(ks)
    touched = {n for n, d in ks.items() if d.signatures}
    return WarmSummary(kernels=len(touched),
                       signatures=sum(h + m for h, m in counts.values()),
                       compiled=sum(m for _, m in counts.values()),
                       loaded=sum(h for h, _ in counts.values()),
                       compile_s=compile_s[0], seconds=time.perf_counter() - t0,
                       untouched=sorted(set(ks) - touched))
