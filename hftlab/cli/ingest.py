"""`hftlab ingest CAPTURE [--out FILE.parquet]`: a capture to Parquet.

Streams the capture batch by batch (bounded memory; gzip/zstd/lz4 captures
are decompressed on the way), shows a progress bar on files over 64 MB (on
the position in the file on disk, compressed bytes for a compressed file),
prints a short summary and a warning naming the count and reasons of packets
whose timestamp is invalid (null ts_ns, ts_error set); `--strict` makes such
a packet an error (exit 2). The library does the work;
this only parses options and prints. Register with
``main.add_command(ingest_cmd, "ingest")``.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import click

from hftlab.errors import HftlabError

PROGRESS_MIN_BYTES = 64 << 20


@click.command("ingest")
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Parquet file for the packets; ITCH/OUCH/PTP tables go beside it "
                   "(FILE.itch.parquet ...). Without it, only the summary is printed.")
@click.option("--trailer", type=click.Choice(["none", "metamako", "arista7130", "exablaze",
                                                "arista7150", "fusion", "auto"]),
              default="none", show_default=True, help="Hardware timestamp trailer to look for.")
@click.option("--mold-port", "mold_ports", type=click.IntRange(0, 65535), multiple=True,
              help="UDP port carrying MoldUDP64 (repeatable); default: any UDP payload that parses.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1 << 18, show_default=True)
@click.option("--partial", is_flag=True,
              help="On a malformed file, keep the packets read before the bad block (exit code 1).")
@click.option("--strict", is_flag=True,
              help="A packet with an invalid timestamp (out-of-range sub-second field, beyond "
                   "int64 ns) is an error (exit 2) instead of a null ts_ns and a warning.")
def ingest_cmd(capture: str, out: str | None, trailer: str, mold_ports: tuple[int, ...],
               batch_size: int, partial: bool, strict: bool) -> None:
    """Decode a pcap, pcapng or Endace ERF CAPTURE, plain or gzip/zstd/lz4-compressed (layers,
    MoldUDP64/ITCH, OUCH, PTP, trailers)."""
    from hftlab.capture import CaptureReader
    from hftlab.capture import ParquetSet

    try:
        reader = CaptureReader(capture, batch_size=batch_size, trailer=None if trailer == "none" else trailer,
                               mold_ports=mold_ports or None, partial=partial, strict=strict)
        t0 = time.perf_counter()
        totals: Counter = Counter()
        apps: Counter = Counter()
        size = Path(capture).stat().st_size if Path(capture).is_file() else 0
        writer = ParquetSet(out, reader.metadata) if out else None
        with _progress(size) as advance:
            if writer:
                writer.__enter__()
            try:
                for batch in reader:
                    totals.update(packets=batch.packets.num_rows, itch=batch.itch.num_rows,
                                  ouch=batch.ouch.num_rows, ptp=batch.ptp.num_rows)
                    apps.update(_app_counts(batch.packets.column("app")))
                    if writer:
                        writer.write(batch)
                    advance(reader.input_pos)
            except BaseException:
                if writer:
                    writer.__exit__(*sys.exc_info())
                raise
            if writer:
                writer.__exit__(None, None, None)
        dt = time.perf_counter() - t0
    except HftlabError as exc:
        click.echo(f"hftlab: error: {exc}", err=True)
        sys.exit(2)
    _summary(reader.metadata, totals, apps, dt, writer)
    if reader.metadata.get("ts_errors"):
        errs = reader.metadata["ts_errors"]
        click.echo(f"hftlab: warning: {sum(errs.values())} packet(s) with an invalid timestamp "
                   "(ts_ns null, ts_error says why): "
                   + ", ".join(f"{k}={v}" for k, v in sorted(errs.items())), err=True)
    if reader.error is not None:
        click.echo(f"hftlab: warning: stopped early (partial): {reader.error}", err=True)
        sys.exit(1)


def _app_counts(app) -> dict[str, int]:
    """Packets per `app` value ("other" for null), counted on the dictionary
    codes with numpy: Array.value_counts would import pyarrow.compute (~0.25 s
    of a small file's ingest)."""
    import numpy as np

    codes = np.frombuffer(app.indices.buffers()[1], np.int8)[app.offset:app.offset + len(app)]
    names = app.dictionary.to_pylist()
    counts = np.bincount(codes, minlength=len(names))
    return {names[k] or "other": int(c) for k, c in enumerate(counts) if c}


def _summary(md: dict, totals: Counter, apps: Counter, dt: float, writer) -> None:
    n = totals["packets"]
    rate = n / dt / 1e6 if dt else 0.0
    packed = f" ({md['compression']}, {md['decompressed_size']} bytes decompressed)" \
        if md.get("compression") else ""
    click.echo(f"{md['file']}: {md['format']}, {md['size']} bytes{packed}, {len(md['sections'])} "
               f"section(s), {len(md['interfaces'])} interface(s)")
    for f in md["interfaces"]:
        click.echo(f"  section {f['section']} interface {f['id']}: linktype {f['linktype']}, snaplen {f['snaplen']}, "
                   f"tsresol {f['tsresol']}" + (f", name {f['name']}" if f.get("name") else ""))
    click.echo(f"{n} packets in {dt:.3f} s ({rate:.2f} M packets/s); "
               + ", ".join(f"{k}={v}" for k, v in sorted(apps.items())))
    click.echo(f"itch messages={totals['itch']} ouch orders={totals['ouch']} ptp messages={totals['ptp']}")
    if md.get("skipped_blocks"):
        click.echo("skipped blocks: " + ", ".join(f"{k}={v}" for k, v in md["skipped_blocks"].items()))
    if writer:
        for name, path in writer.paths.items():
            click.echo(f"{name} -> {path}")


class _progress:
    """A rich progress bar over bytes for big files; a no-op otherwise."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._bar = None

    def __enter__(self):
        if self.size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
            from rich.progress import Progress
            self._bar = Progress(transient=True)
            self._bar.__enter__()
            task = self._bar.add_task("ingest", total=self.size)
            return lambda done: self._bar.update(task, completed=done)
        return lambda done: None

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
