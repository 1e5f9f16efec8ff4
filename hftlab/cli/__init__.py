"""hftlab command line: thin wrappers that print; the library does the work.

Every command turns HftlabError into a one-line message and exit code 2, so
scripts see a clear reason and no traceback.
"""
from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from hftlab.errors import HftlabError


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HftlabError as exc:
            click.echo(f"hftlab: error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hftlab")
def main() -> None:
    """hftlab: latency research workbench for HFT-OS."""


def _load_config(path: str | None, strategy: str | None = None):  # -> EngineConfig
    from hftlab.model.core import EngineConfig

    cfg = EngineConfig.from_file(path) if path else EngineConfig.default()
    if strategy is not None:  # --strategy overrides the config's strategy.file
        cfg.strategy.file = strategy
        cfg.validate()
    return cfg


@main.command("itch")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Parquet file to write (written to a temporary name, then renamed).")
@click.option("--messages", type=click.IntRange(min=0), default=None,
              help="Decode only the first N framed messages.")
@_fail_cleanly
def itch_cmd(file: str, out: str, messages: int | None) -> None:
    """Decode an ITCH 5.0 FILE into Parquet, one row per message."""
    from hftlab.model import core
    from hftlab.util.io import ParquetOut

    counters: dict[str, Any] = {}
    t0 = time.perf_counter()
    meta = {"hftlab.source": str(Path(file).resolve())}
    with ParquetOut(out, core.itch_schema(), meta) as w:
        for batch in core.iter_itch_batches(file, messages=messages, counters=counters):
            w.write(batch)
    dt = time.perf_counter() - t0
    n = counters.get("messages", 0)
    click.echo(f"{n} messages decoded in {dt:.3f} s ({n / dt / 1e6 if dt else 0:.2f} M/s) -> {out}")
    skipped = {k: counters[k] for k in ("unknown_type", "bad_length", "empty") if counters.get(k)}
    if skipped:
        click.echo(f"skipped: {skipped}")
    click.echo("by type: " + " ".join(f"{k}={v}" for k, v in sorted(counters["by_type"].items())))


@main.command("golden")
@click.option("--dataset", required=True, type=click.Path(dir_okay=False),
              help="ITCH 5.0 file to feed through the C trading core.")
@click.option("--messages", type=click.IntRange(min=0), default=None,
              help="Feed only the first N messages.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Strategy/risk config (JSON or TOML); default config otherwise.")
@click.option("--strategy", default=None,
              help="Strategy C file or bundled name (trigger, imbalance, quoter); compiled into "
                   "the golden model on first use (overrides the config's strategy.file).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Parquet file for the orders.")
@_fail_cleanly
def golden_cmd(dataset: str, messages: int | None, config_path: str | None, strategy: str | None,
               out: str) -> None:
    """The orders the cffi core emits for a feed (the golden model)."""
    from hftlab.model import core
    from hftlab.util.io import write_parquet

    cfg = _load_config(config_path, strategy)
    t0 = time.perf_counter()
    res = core.golden(dataset, cfg, messages=messages)
    dt = time.perf_counter() - t0
    meta = {"hftlab.golden": json.dumps({"dataset": str(Path(dataset).resolve()),
                                         "messages": messages, "config": cfg.to_dict(),
                                         "counters": res.counters})}
    write_parquet(res.orders, out, meta)
    c = res.counters
    rejected = {k[9:]: v for k, v in c["risk"].items() if k.startswith("rejected_") and v}
    click.echo(f"{c['itch']['messages']} messages in {c['mold']['packets']} MoldUDP64 packets, "
               f"{dt:.3f} s")
    click.echo(f"{c['strategy']['signals']} signals, {c['orders']} orders, "
               f"risk rejects {rejected or 'none'} -> {out}")


@main.command("synth")
@click.option("--messages", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@_fail_cleanly
def synth_cmd(messages: int, seed: int, out: str) -> None:
    """Write a seeded synthetic ITCH 5.0 feed."""
    from hftlab.model import synth

    t0 = time.perf_counter()
    counts = synth.generate(out, messages, seed=seed)
    dt = time.perf_counter() - t0
    click.echo(f"{sum(counts.values())} messages in {dt:.2f} s -> {out}")
    click.echo("by type: " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@main.command("doctor")
@_fail_cleanly
def doctor_cmd() -> None:
    """Check the tools and permissions a run needs; exit 0 only when a KVM run can start."""
    import os
    from pathlib import Path

    from hftlab.lab.build import toolchain
    from hftlab.lab.vm import choose_accel

    rows, ok_all = [], True
    for t in toolchain(("nasm", "gcc", "ld", "objcopy", "make", "qemu-system-x86_64", "dumpcap", "ip")):
        rows.append((t.name, bool(t.path), t.version if t.path else f"missing: {t.hint}"))
    root = os.geteuid() == 0
    rows.append(("root (tap, netns)", root, "yes" if root else "run as root for tap/netns runs"))
    tun = Path("/dev/net/tun").exists()
    rows.append(("/dev/net/tun", tun, "present" if tun else "missing: modprobe tun"))
    kvm = choose_accel("auto", pvm_image=True)  # HFT-OS by PVH: its loop runs at CPL3
    rows.append(("KVM", kvm.name in ("kvm", "kvm-pvm"), kvm.reason))
    for name, good, detail in rows:
        ok_all &= good or name == "KVM"
        click.echo(f"  [{'ok' if good else '!!'}] {name:<20} {detail}")
    for name, good, detail in _baseline_checks():  # only the Linux baselines need these
        click.echo(f"  [{'ok' if good else '--'}] {name:<20} {detail}")
    if not ok_all:
        click.echo("some checks failed: see the hints above")
        sys.exit(1)
    if kvm.name == "kvm-pvm":
        click.echo("all checks passed: HFT-OS runs (--boot pvh) use KVM-PVM (accel kvm-pvm: "
                   "the trading loop at CPL3, natively); Linux guests use TCG here")
        return
    if kvm.name != "kvm":
        click.echo("runs will use TCG (software emulation); a KVM run cannot start here")
        sys.exit(3)
    click.echo("all checks passed: KVM runs can start")


def _baseline_checks() -> list[tuple[str, bool, str]]:
    """What the Linux baselines need beyond HFT-OS's tools (doctor rows)."""
    import shutil
    import subprocess
    from pathlib import Path

    from hftlab.lab import guest
    from hftlab.errors import HftlabError

    rows = []
    pc = shutil.which("pkg-config")
    p = subprocess.run([pc, "--modversion", "libdpdk"], capture_output=True, text=True) if pc else None
    rows.append(("DPDK (linux-dpdk)", bool(p and p.returncode == 0),
                 p.stdout.strip() if p and p.returncode == 0 else "missing: apt-get install libdpdk-dev"))
    try:
        rows.append(("busybox (guest)", True, str(guest.busybox())))
    except HftlabError as exc:
        rows.append(("busybox (guest)", False, f"missing: {exc}"))
    qb = Path("/usr/share/qemu/qboot.rom")
    rows.append(("qboot (guest PVH)", qb.is_file(),
                 str(qb) if qb.is_file() else "missing (qemu-system-data): guests boot the bzImage, slower"))
    cached = sorted(guest.cache_dir().glob("linux-image-*/kernel.json"))
    rows.append(("guest kernel cache", bool(cached), cached[-1].parent.name if cached
                 else f"empty: the first guest run fetches Debian's kernel into {guest.cache_dir()}"))
    return rows


@main.command("build")
@_fail_cleanly
def build_cmd() -> None:
    """Build the boot loader, runtime and disk image; print the image path."""
    from hftlab.lab.build import build_os, sha256

    img = build_os()
    click.echo(f"{img}  sha256={sha256(img)[:16]}  {img.stat().st_size} bytes")


def _accel_option(default: str):
    return click.option("--accel", default=default, show_default=True,
                        type=click.Choice(["auto", "kvm", "tcg", "tcg-icount"]))


def _experiment_options(hiccups_default: float):
    """The options every experiment command shares (run, study)."""
    opts = [
        click.option("--nic", default="e1000", show_default=True,
                     type=click.Choice(["e1000", "virtio", "igb"]),
                     help="the SUT's NIC: e1000 (82540EM), virtio (virtio-net-pci, "
                          "modern), igb (82576, PTP hardware timestamps)."),
        click.option("--boot", default="auto", show_default=True,
                     type=click.Choice(["auto", "bios", "pvh", "uefi"]),
                     help="HFT-OS's boot: bios (SeaBIOS, disk image, stage 1/2), pvh (qboot "
                          "-kernel hftos.elf, its PVH entry), auto (pvh when qboot is "
                          "installed, else bios), uefi (OVMF on q35, the disk image's "
                          "BOOTX64.EFI; never auto). Baselines: auto only."),
        click.option("--dataset", type=click.Path(dir_okay=False), default=None,
                     help="ITCH 5.0 file (default: the bundled RITCH sample)."),
        click.option("--messages", type=click.IntRange(min=1), default=None),
        click.option("--rate", type=float, default=20_000.0, show_default=True,
                     help="ITCH messages per second (--pace rate); 0 sends back to back."),
        click.option("--pace", type=click.Choice(["rate", "recorded", "burst", "max"]), default=None,
                     help="How the replayer paces the feed: rate (--rate msg/s), recorded (the "
                          "feed's own ITCH timestamps, or --replay's capture times, divided by "
                          "--speed), burst (--burst datagrams back to back --every seconds), max "
                          "(back to back). Default: recorded with --replay, else rate."),
        click.option("--speed", type=float, default=1.0, show_default=True,
                     help="--pace recorded: time scale (10 replays ten times as fast as recorded)."),
        click.option("--burst", type=int, default=None,
                     help="--pace burst: datagrams per burst (at most the tap's TX queue, 10000)."),
        click.option("--every", "every_s", type=float, default=None,
                     help="--pace burst: seconds from one burst's start to the next."),
        click.option("--replay", type=click.Path(dir_okay=False), default=None,
                     help="Send the MoldUDP64 datagrams of this pcap/pcapng (e.g. captures/moldudp64/, "
                          "or an earlier run's wire.pcapng) instead of --dataset, re-addressed to "
                          "the SUT; the golden model runs on exactly them."),
        click.option("--max-count", type=click.IntRange(1, 0xFFFE), default=64, show_default=True,
                     help="ITCH messages per MoldUDP64 datagram at most (1: one tick per frame)."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None),
        click.option("--strategy", default=None,
                     help="Strategy C file (kernel_src/core/strategy.h) or bundled name (trigger, "
                          "imbalance, quoter): HFT-OS, the baselines and the golden model are "
                          "built with it (overrides the config's strategy.file)."),
        click.option("--guest-cpus", type=click.IntRange(1, 2), default=2, show_default=True,
                     help="Linux guests: 2 isolates CPU 1 for the baseline (isolcpus, nohz_full, "
                          "rcu_nocbs; housekeeping on CPU 0); 1 shares it with the kernel."),
        click.option("--hiccups", "hiccups_s", type=click.FloatRange(0, 60),
                     default=hiccups_default, show_default=True,
                     help="Seconds of the poll-loop gap recorder on the SUT's core before "
                          "the feed (0: off)."),
        click.option("--hiccup-threshold", "hiccup_threshold_ns", type=click.IntRange(min=1),
                     default=1000, show_default=True, help="Gaps longer than this many ns are hiccups."),
    ]

    def apply(fn):
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return apply


def _hw_options(fn):
    """run's options for the boot media and the hardware target (hftlab.experiment.hw)."""
    opts = [
        click.option("--media", default="disk", show_default=True, type=click.Choice(["disk", "usb", "pxe"]),
                     help="How HFT-OS's image reaches the machine: disk (IDE disk; -kernel for pvh), "
                          "usb (USB stick: qemu-xhci + usb-storage, or --device for hw), pxe "
                          "(the NIC's iPXE netboots it from hftlab's dnsmasq + HTTP)."),
        click.option("--target", default="vm", show_default=True, type=click.Choice(["vm", "hw"]),
                     help="vm: QEMU runs the SUT; hw: a machine on --iface and --console."),
        click.option("--iface", default=None, help="hw: the host NIC cabled to the SUT's NIC."),
        click.option("--console", default=None, help="hw: the SUT's serial console (e.g. /dev/ttyUSB0)."),
        click.option("--baud", type=int, default=115200, show_default=True, help="hw: console baud rate."),
        click.option("--mac", default=None, help="hw: the SUT NIC's MAC (PXE answers only it; "
                                                 "a permanent neighbour entry on --iface)."),
        click.option("--device", default=None, help="hw, media usb: the stick to write the run's image to."),
        click.option("--force", is_flag=True, help="hw, media usb: write a --device that is not "
                                                   "removable (as deploy usb --force)."),
        click.option("--power-cmd", default=None,
                     help="hw: shell command that powers on or resets the SUT (ipmitool, a PDU, "
                          "a USB mux); run after the console is open. Default: power it on by hand."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@main.command("run")
@click.option("--sut", default="hftos", show_default=True, help="System under test.")
@_accel_option("auto")
@click.option("--where", default="guest", show_default=True, type=click.Choice(["guest", "host"]),
              help="Baselines: in a Linux guest under the same QEMU NIC (guest) or in a "
                   "network namespace on the host (host).")
@_experiment_options(hiccups_default=0.0)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<id>).")
@click.option("--ptp", is_flag=True,
              help="ptp4l masters the run's tap (software stamps); HFT-OS's PTP slave locks to it "
                   "before the feed; ptp.parquet and run.json's ptp hold its offset, path delay "
                   "and servo state. igb: NIC hardware stamps (l2); e1000/virtio: TSC stamps.")
@click.option("--ptp-domain", type=click.IntRange(0, 127), default=0, show_default=True)
@click.option("--ptp-transport", type=click.Choice(["l2", "udp"]), default="l2", show_default=True,
              help="PTP over Ethernet (0x88F7) or UDPv4 (319/320).")
@click.option("--ptp-sync", "ptp_log_sync", type=click.IntRange(-7, 4), default=-3, show_default=True,
              help="ptp4l's logSyncInterval: a Sync every 2^n s.")
@click.option("--ptp-settle", "ptp_settle_s", type=click.FloatRange(0, 3600), default=0.0,
              show_default=True, help="Seconds of PTP after lock before the feed starts.")
@_hw_options
@_fail_cleanly
def run_cmd(sut, accel, nic, boot, where, dataset, messages, rate, max_count, config_path, strategy,
            guest_cpus, out, hiccups_s, hiccup_threshold_ns, ptp, ptp_domain, ptp_transport,
            ptp_log_sync, ptp_settle_s, **hw) -> None:
    """One experiment end to end: build, boot, replay, capture, measure."""
    from hftlab.util.proc import TerminateAsInterrupt
    from hftlab.analysis.latency import format_summary, percentiles
    from hftlab.experiment import api
    from hftlab.experiment.progress import Progress

    bar = Progress("run", mode="tty" if sys.stderr.isatty() else "off")
    with TerminateAsInterrupt(), bar:  # the same code path as hftlab.run in a notebook
        r = api.run(sut, accel=accel, nic=nic, boot=boot, where=where, dataset=dataset, messages=messages,
                    rate=rate or None, max_count=max_count, config=config_path, strategy=strategy,
                    guest_cpus=guest_cpus,
                    out=out, hiccups=hiccups_s, hiccup_threshold_ns=hiccup_threshold_ns,
                    progress=bar, backend="arrow", ptp=ptp, ptp_domain=ptp_domain,
                    ptp_transport=ptp_transport, ptp_log_sync=ptp_log_sync,
                    ptp_settle_s=ptp_settle_s, **hw)
    i = r.info
    click.echo(f"run {r.run_id}: {r.sut} on {r.accel} ({i['spec']['accel_reason']}) -> {r.path}")
    if i["spec"].get("boot"):
        click.echo(f"boot: {i['spec']['boot']} ({i['spec']['boot_reason']}), "
                   f"media {i['spec'].get('media', 'disk')}, target {i['spec'].get('target', 'vm')}")
    if "hw" in i:
        click.echo(f"hw: {i['hw']['iface']} + console {i['hw']['console']}, booted by "
                   f"{i['hw'].get('booted_by')}")
    click.echo(f"orders: {i['orders']['sut']} (golden {i['orders']['golden']}, "
               f"equal={i['orders']['equal']}); phases {i['phases_s']}")
    if "ptp" in i:
        p, sm = i["ptp"], i["ptp"]["summary"]
        conv = (f"|offset| < {sm['bound_ns']:,} ns after {sm['lock_s']} s, then |offset| p50 "
                f"{sm['offset_abs_p50_ns']:,.0f} p99 {sm['offset_abs_p99_ns']:,.0f} ns over {sm['window_s']} s"
                if sm["lock_s"] is not None else f"|offset| never below {sm['bound_ns']:,} ns")
        click.echo(f"ptp: {p['state']} to ptp4l over {p['transport']}, {p['stamps']} stamps; {conv}; "
                   f"path delay {p['mean_path_delay_ns']:,} ns; series {r.path / 'ptp.parquet'}")
    for row in r.describe().to_pylist():  # wire_ns in ns; internal in ns, or instructions under tcg-icount
        click.echo(format_summary(row["figure"], {k: row[k] for k in
                                                  ("count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max")},
                                  row["unit"]))
    if r.internal_unit == "ns":  # the same span in the SUT's TSC cycles
        p = percentiles(r.values("internal_cycles"))
        click.echo(format_summary("internal_cycles", p, "cycles"))
    for span in ("decide", "doorbell"):  # internal split at the TX doorbell (docs/architecture.md §3)
        col = f"{span}_cycles" if r.internal_unit == "instructions" else f"{span}_ns"
        if col in r.latency_table().column_names:
            click.echo(format_summary(span, percentiles(r.values(col)), r.internal_unit))
    if "hiccups" in i:
        h = i["hiccups"]
        click.echo(f"hiccups: {h['gaps']} gaps > {h['threshold_ns']} ns in {h['span_s']:.2f} s "
                   f"({h['iterations']} iterations), {100 * h['lost_fraction']:.2f}% lost, "
                   f"longest {h['max_ns']} ns")
    p = i.get("pacing") or {}
    if p.get("error_ns"):
        e = p["error_ns"]
        click.echo(f"pacing: {p['mode']}, {p['datagrams']} datagrams in {p['span_s']} s, "
                   f"|{p['error_of']} - due| p50 {e['p50'] / 1e3:,.1f} p99 {e['p99'] / 1e3:,.1f} "
                   f"p99.9 {e['p99.9'] / 1e3:,.1f} max {e['max'] / 1e3:,.1f} us, {p['late']} late "
                   f"> {p['late_threshold_ns'] // 1000} us (replay.parquet)")
    for w in p.get("warnings", []):
        click.echo(f"warning: {w}", err=True)
    click.echo(f"report: {r.path / 'report.md'} (+ latency.png)")


@main.command("study")
@click.option("--suts", default="hftos,linux-socket,linux-dpdk", show_default=True,
              help="Comma-separated SUTs; the first is the reference of the ratios and A/B verdicts.")
@click.option("--reps", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repetitions, interleaved: each rep runs every SUT once, rep k starting at the k-th SUT.")
@_accel_option("tcg")
@_experiment_options(hiccups_default=1.0)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Study directory: one run directory per SUT and rep, report.html, *.parquet.")
@_fail_cleanly
def study_cmd(suts, reps, accel, nic, boot, dataset, messages, rate, max_count, config_path, strategy,
              guest_cpus, hiccups_s, hiccup_threshold_ns, out, **pacing) -> None:
    """HFT-OS against the Linux baselines in the guest: same dataset, NIC, accel, rate."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hftlab.util.proc import TerminateAsInterrupt
    from hftlab.experiment.run import DEFAULT_DATASET
    from hftlab.experiment.study import StudySpec, format_table, study

    spec = StudySpec(suts=tuple(s.strip() for s in suts.split(",") if s.strip()), reps=reps,
                     accel=accel, nic=nic, boot=boot, dataset=Path(dataset) if dataset else DEFAULT_DATASET,
                     messages=messages, rate=rate or None, max_count=max_count,
                     config=_load_config(config_path, strategy), guest_cpus=guest_cpus,
                     hiccups_s=hiccups_s, hiccup_threshold_ns=hiccup_threshold_ns, **pacing)
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), TimeElapsedColumn(),
                  transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("start", total=1.0)
        with TerminateAsInterrupt():
            res = study(spec, out, progress=lambda s, f: bar.update(task, description=s, completed=f))
    click.echo(format_table(res))
    click.echo(f"report: {res.report.html}")


@main.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", default=None,
              help="Sweep directory, a path or a filesystem URI (default: the spec's out, else runs/sweep-NAME).")
@click.option("--address", default=None,
              help="Ray cluster to run on (e.g. 10.0.0.1:6379); default: an embedded local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local Ray only: CPUs, i.e. icount runs side by side (default: the machine's).")
@click.option("--retries", type=click.IntRange(min=0), default=None,
              help="Tries after a failed run (default: the spec's retries, else 1).")
@click.option("--dry-run", is_flag=True, help="Print the runs the grid expands into; run nothing.")
@_fail_cleanly
def sweep_cmd(spec, out, address, workers, retries, dry_run) -> None:
    """Run the grid of SPEC (YAML) on Ray; results in one hive-partitioned Parquet dataset.

    Runs whose key already has a complete result are skipped; a failed run is
    recorded and retried without stopping the others; exit status 1 when a
    run failed after its retries."""
    from hftlab.util.proc import TerminateAsInterrupt
    from hftlab.sweep import grid, sweep

    s = grid.load_spec(spec, out=out)
    if dry_run:
        pts = grid.expand(s)
        keys = sorted({k for p in pts for k, v in p.params.items()
                       if len({str(q.params[k]) for q in pts}) > 1} - {"dataset"})
        click.echo(f"sweep {s.name} -> {s.out}: {len(pts)} runs "
                   f"({sum(p.timing for p in pts)} timing, {sum(not p.timing for p in pts)} icount)")
        for p in pts:
            click.echo(f"  {p.key}  rep {p.rep}  " + " ".join(f"{k}={p.params[k]}" for k in keys))
        return
    with TerminateAsInterrupt():
        res = sweep(s, address=address, workers=workers, retries=retries, progress=True)
    c = res.counts
    click.echo(f"sweep {res.name}: {c['runs']} runs: {c['skipped']} already complete, {c['ok']} ok, "
               f"{c['failed']} failed in {res.outcome.wall_s:.1f} s -> {res.path}")
    for key, err in res.failed.items():
        click.echo(f"  failed {key}: {err.splitlines()[0][:300]}")
    click.echo(f"dataset: {res.path}/data/{{runs,latency,orders,counters,hiccups}}/sweep={res.name}/...")
    if res.failed:
        sys.exit(1)


@main.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for report.html, the PNGs, parquet/ and hdr/.")
@click.option("--study", default=None, help="Study name for the Parquet partitions (default: the --out name).")
@click.option("--boot", "n_boot", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap replicates of the A/B confidence intervals.")
@_fail_cleanly
def report_cmd(runs, out, study, n_boot) -> None:
    """Latency report of RUN directories, grouped by SUT and the settings that differ; with two or more groups, the A/B comparison against the first group."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hftlab.analysis.latency import format_summary
    from hftlab.analysis.report import study_report

    with Progress(TextColumn("{task.description:<8}"), BarColumn(), TimeElapsedColumn(),
                  transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("load", total=1.0)
        rep = study_report(runs, out, study=study, n_boot=n_boot,
                           progress=lambda step, frac: bar.update(task, description=step, completed=frac))
    for name, st in rep.stats.items():
        p = {"count": st["wire_ns"].count, "min": st["wire_ns"].min, **st["wire_ns"].percentiles,
             "max": st["wire_ns"].max}
        click.echo(format_summary(name, p))
    if rep.comparison is not None:
        for v in rep.comparison.column("verdict").to_pylist():
            click.echo(f"  {v}")
    click.echo(f"report: {rep.html} ({len(rep.pngs)} figures); parquet: {rep.parquet_root}")


@main.group("deploy")
def deploy_group() -> None:
    """Put HFT-OS on a USB stick or into a PXE (TFTP/HTTP) tree."""


def _default_image(image: str | None) -> Path:
    if image:
        return Path(image)
    from hftlab.lab.build import build_os

    return build_os(boot="bios")


@deploy_group.command("usb")
@click.option("--device", required=True, help="The whole block device of the stick, e.g. /dev/sdb.")
@click.option("--image", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Disk image to write (default: build kernel_src's hftos.img); a run "
                   "directory's hftos.img carries that run's config block.")
@click.option("--force", is_flag=True,
              help="Write a device that is neither removable nor on USB (a loop device, an SD "
                   "reader). Mounted, in-use or too small devices are refused regardless.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_fail_cleanly
def deploy_usb_cmd(device: str, image: str | None, force: bool, yes: bool) -> None:
    """Write the image to a USB stick: refuse unsafe devices, confirm, write, sync, read back, compare."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from hftlab.lab import deploy
    from hftlab.lab.build import read_image_config

    img = _default_image(image)
    size = img.stat().st_size
    dev = deploy.inspect_device(device)
    deploy.check_device(dev, size, force=force)  # refuse before asking
    cfg = read_image_config(img)
    kind = "removable" if dev.removable else ("on USB" if dev.usb else "NOT removable (--force)")
    click.echo(f"{img}: {size} bytes, config ip_self {cfg['ip_self']} ip_peer {cfg['ip_peer']} "
               f"mac_peer {cfg['mac_peer']}")
    click.echo(f"{dev.path}: {dev.name}, {dev.size} bytes, {kind}")
    if not yes:
        click.confirm(f"Overwrite {dev.path} ({dev.name}) with {img.name}? Everything on it is lost",
                      abort=True)
    with Progress(TextColumn("{task.description:<7}"), BarColumn(), DownloadColumn(),
                  disable=not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task("write", total=size)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        try:
            res = deploy.write_to_device(img, device, force=force, progress=progress)
        except KeyboardInterrupt as exc:
            for note in getattr(exc, "__notes__", []):
                click.echo(f"hftlab: {note}", err=True)
            sys.exit(130)
    click.echo(f"{res.device}: {res.bytes} bytes written, synced and read back in {res.seconds:.2f} s; "
               f"sha256 {res.sha256} verified")


@deploy_group.command("pxe")
@click.option("--dir", "dest", required=True, type=click.Path(file_okay=False),
              help="The TFTP root to write (and the directory your HTTP server serves).")
@click.option("--image", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Disk image to serve (default: build kernel_src's hftos.img).")
@click.option("--http-url", default="http://${next-server}/", show_default=True,
              help="Where the HTTP server serves --dir (iPXE reads the image by range requests); "
                   "${next-server} is the TFTP server DHCP named.")
@_fail_cleanly
def deploy_pxe_cmd(dest: str, image: str | None, http_url: str) -> None:
    """Write a TFTP tree that netboots HFT-OS through iPXE (sanboot over HTTP)."""
    from hftlab.lab import deploy

    m = deploy.write_pxe_tree(dest, _default_image(image), http_url=http_url)
    for name in m["files"]:
        click.echo(f"  {Path(dest) / name}")
    click.echo(f"DHCP: iPXE clients (option 175) -> {deploy.IPXE_SCRIPT}; BIOS PXE -> "
               f"{m['dhcp']['bios_pxe (option 93 = 0)']}; UEFI PXE -> {m['dhcp']['uefi_pxe (option 93 = 7 or 9)']}")
    click.echo(f"HTTP: serve {dest} at {http_url} with byte ranges; manifest {Path(dest) / 'pxe.json'}")


def _register_ingest() -> None:
    from hftlab.cli.ingest import ingest_cmd

    main.add_command(ingest_cmd, "ingest")


_register_ingest()

if __name__ == "__main__":  # pragma: no cover
    main()
