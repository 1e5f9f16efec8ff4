"""HFT-OS boot time: BIOS (SeaBIOS, disk image, stage 1/2) against PVH (qboot,
-kernel hftos.elf) and UEFI (OVMF on q35, the same disk image's
BOOTX64.EFI), per NIC, side by side.

Issue 14, items 1 and 2. Each boot is a fresh QEMU (hftlab.lab.vm.Vm, the VmSpec a
run uses, QEMU user networking as tests/test_os.py::test_boot) of the
default trading image, stopped once READY is on its console. Boots
alternate between the boot paths (bios, pvh, uefi, bios, ...) so all see
the same machine load. Per boot:

  first_out_s   QEMU start to the loader's first line ("hftos stage2" /
                "hftos pvh" / "hftos uefi"): the nearest thing to "first instruction of our
                code" that the host can see (wall clock, 5 ms polls)
  entry_s       QEMU start to the runtime's first line (wall clock)
  init_s        QEMU start to "boot: phase init" (NIC up, engine ready)
  ready_s       QEMU start to "HFTOS READY" (what `hftlab run` calls ready)
  guest_first_ms  PVH and UEFI: the TSC the PVH entry or BOOTX64.EFI
                prints at its first instructions ("hftos pvh tsc=0x...",
                "hftos uefi tsc=0x..."), in ms (the TSC counts from the VM's
                start under TCG): qboot's or OVMF's share
  guest_entry_ms  the runtime's entry TSC / its TSC Hz: guest time from the
                VM's start to kmain (the loader, plus _start's .bss clear)
  boot_to_init_ms (init TSC - entry TSC) / TSC Hz: the OS's own figure

The table gives median, min and max of --reps boots. The machine is shared
(2 cores): the load average before and after is printed.

--matrix: the issue's boot matrix. Every boot path a run has (BIOS disk,
BIOS USB, UEFI disk, UEFI USB, PXE BIOS, PXE UEFI, PVH) x NIC, each a whole
`hftlab run` (hftlab.experiment.run: build, netns + tap, QEMU, RITCH replay,
golden comparison), --reps times, paths interleaved as above. Per cell:

  first_ms      guest TSC at our first instructions (stage 2's, the PVH
                entry's or BOOTX64.EFI's "tsc=0x..." line), ms from the VM's
                start: the firmware's (SeaBIOS, OVMF, iPXE) share
  entry_ms      guest TSC at the runtime's entry (kmain), ms from the VM's
                start: first_ms to entry_ms is the loader plus _start's .bss clear
  init_ms       guest TSC at "boot: phase init", ms from the VM's start
  ready_s       wall clock, QEMU start to "HFTOS READY" (run.json phases_s.ready)
  boot_to_init_ms  the runtime's entry to init (the OS's own figure)
  golden        every rep's orders equal the golden model's

Usage:
    python benchmarks/boot.py [--reps 5] [--nics e1000,virtio] [--boots bios,pvh,uefi]
                              [--accel tcg] [--json OUT]
    python benchmarks/boot.py --matrix [--reps 3] [--nics e1000,virtio,igb]
                              [--paths bios-disk,...] [--json OUT]
(virtio by UEFI: OVMF puts its 64-bit BAR above 4 GiB; the runtime maps it,
arch/x86_64/paging.c.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from pathlib import Path

from hftlab.lab.build import OsParams, build_os, write_image
from hftlab.lab.vm import Vm, VmSpec, boot_media, choose_accel, choose_boot

MARKERS = {"first_out_s": b"hftos ", "entry_s": b"HFT-OS runtime", "init_s": b"boot: phase init",
           "ready_s": b"HFTOS READY"}
_PHASE = re.compile(rb"boot: phase (\w+) tsc=(\d+)")
_HZ = re.compile(rb"tsc: (\d+) Hz")
_FIRST_TSC = re.compile(rb"hftos (?:stage2|pvh|uefi) tsc=0x([0-9a-f]+)")

#: The matrix's boot paths: RunSpec fields of each (hftlab.experiment.spec).
PATHS = {"bios-disk": {"boot": "bios"}, "bios-usb": {"media": "usb", "boot": "bios"},
         "uefi-disk": {"boot": "uefi"}, "uefi-usb": {"media": "usb", "boot": "uefi"},
         "pxe-bios": {"media": "pxe", "boot": "bios"}, "pxe-uefi": {"media": "pxe", "boot": "uefi"},
         "pvh": {"boot": "pvh"}}


def one_boot(boot: str, nic: str, accel: str, work: Path) -> dict[str, float]:
    choice = choose_boot(boot)
    src = build_os(boot=choice.name)
    os_file = work / src.name
    write_image(src, os_file, OsParams(ip_self="10.0.2.15", ip_peer="10.0.2.2",
                                       mac_peer="52:55:0a:00:02:02"))
    spec = VmSpec(**boot_media(choice, os_file), workdir=work, accel=choose_accel(accel), nic=nic,
                  netdev="user,id=n0", vcpu_core=None)
    row: dict[str, float] = {}
    with Vm(spec) as vm:
        for name, marker in MARKERS.items():
            row[name] = vm.wait_serial(marker, 120)
        serial = vm.serial_path.read_bytes()
    tsc = {k.decode(): int(v) for k, v in _PHASE.findall(serial)}
    hz = int(_HZ.search(serial).group(1))
    first = _FIRST_TSC.search(serial)
    row["guest_first_ms"] = int(first.group(1), 16) / hz * 1e3 if first else float("nan")
    row["guest_entry_ms"] = tsc["entry"] / hz * 1e3
    row["boot_to_init_ms"] = (tsc["init"] - tsc["entry"]) / hz * 1e3
    row["tsc_hz"] = hz
    return row


def guest_ms(serial: bytes) -> dict[str, float]:
    """The console's guest-TSC stamps as ms from the VM's start."""
    hz = _HZ.search(serial)
    if not hz:
        raise SystemExit("no 'tsc: <n> Hz' line on the console")
    hz = int(hz.group(1))
    tsc = {k.decode(): int(v) for k, v in _PHASE.findall(serial)}
    first = _FIRST_TSC.search(serial)
    return {"first_ms": int(first.group(1), 16) / hz * 1e3 if first else float("nan"),
            "entry_ms": tsc["entry"] / hz * 1e3, "init_ms": tsc["init"] / hz * 1e3,
            "boot_to_init_ms": (tsc["init"] - tsc["entry"]) / hz * 1e3}


def one_run(path: str, nic: str, accel: str, out: Path) -> dict[str, float]:
    """One whole RITCH run by `path` on `nic`; its boot figures and golden verdict."""
    from hftlab.experiment.run import RunSpec, run  # the run machinery only for --matrix

    res = run(RunSpec(nic=nic, accel=accel, out=out, boot_timeout=180.0, **PATHS[path]))
    info = json.loads((res.run_dir / "run.json").read_text())
    if info["status"] != "ok":
        raise SystemExit(f"{path}/{nic}: run failed: {info.get('error')}")
    row = guest_ms((res.run_dir / "serial.log").read_bytes())
    row["ready_s"] = info["phases_s"]["ready"]
    row["golden"] = bool(info["orders"]["equal"]) and info["orders"]["sut"] > 0
    return row


def _cell(values: list[float], fmt: str) -> str:
    v = [x for x in values if x == x]  # NaN: not measured on this path
    if not v:
        return "-"
    return f"{fmt.format(statistics.median(v))} [{fmt.format(min(v))}, {fmt.format(max(v))}]"


def matrix(a: argparse.Namespace) -> None:
    from hftlab.lab.media import ipxe_rom
    from hftlab.errors import ConfigError

    paths = a.paths.split(",")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise SystemExit(f"--paths: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    cells: list[tuple[str, str]] = []
    skipped: dict[tuple[str, str], str] = {}
    for path in paths:
        for nic in a.nics.split(","):
            if PATHS[path].get("media") == "pxe":
                try:
                    ipxe_rom(nic)
                except ConfigError as exc:
                    skipped[(path, nic)] = str(exc)
                    continue
            cells.append((path, nic))
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            for path, nic in cells:
                r = one_run(path, nic, a.accel, Path(tmp) / f"{path}-{nic}-{rep}")
                rows.setdefault((path, nic), []).append(r)
                print(f"  rep {rep} {path:<9} {nic:<6} first {r['first_ms']:.1f} ms, init "
                      f"{r['init_ms']:.1f} ms, ready {r['ready_s']:.2f} s, golden {r['golden']}",
                      flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"accel {a.accel}, RITCH, median [min, max] of {a.reps} runs")
    print("| path | NIC | first instruction (ms) | runtime entry (ms) | init (ms) | ready (s) | boot-to-init (ms) | golden-equal |")
    print("|---|---|---|---|---|---|---|---|")
    for (path, nic), rs in rows.items():
        print(f"| {path} | {nic} | {_cell([r['first_ms'] for r in rs], '{:.0f}')} | "
              f"{_cell([r['entry_ms'] for r in rs], '{:.0f}')} | {_cell([r['init_ms'] for r in rs], '{:.0f}')} | {_cell([r['ready_s'] for r in rs], '{:.2f}')} | "
              f"{_cell([r['boot_to_init_ms'] for r in rs], '{:.1f}')} | "
              f"{'yes' if all(r['golden'] for r in rs) else 'NO'} ({len(rs)}/{len(rs)}) |")
    for (path, nic), why in skipped.items():
        print(f"| {path} | {nic} | - | - | - | - | - | not run: {why} |")
    if a.json:
        a.json.write_text(json.dumps({"accel": a.accel, "reps": a.reps,
                                      "cells": {f"{p}/{n}": rs for (p, n), rs in rows.items()},
                                      "skipped": {f"{p}/{n}": w for (p, n), w in skipped.items()},
                                      "load_average": os.getloadavg()}, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matrix", action="store_true", help="the boot matrix: whole RITCH runs per path x NIC")
    ap.add_argument("--paths", default=",".join(PATHS), help="--matrix: the boot paths")
    ap.add_argument("--reps", type=int, default=None, help="boots per cell (5; --matrix: 3)")
    ap.add_argument("--nics", default=None, help="e1000,virtio (--matrix: e1000,virtio,igb)")
    ap.add_argument("--boots", default="bios,pvh,uefi")
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.matrix:
        a.reps, a.nics = a.reps or 3, a.nics or "e1000,virtio,igb"
        matrix(a)
        return
    a.reps, a.nics = a.reps or 5, a.nics or "e1000,virtio"
    print(f"load average before: {os.getloadavg()}")
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nic in a.nics.split(","):
            for rep in range(a.reps):
                for boot in a.boots.split(","):
                    work = Path(tmp) / f"{nic}-{boot}-{rep}"
                    rows.setdefault((nic, boot), []).append(one_boot(boot, nic, a.accel, work))
    print(f"load average after: {os.getloadavg()}")
    cols = ["first_out_s", "entry_s", "init_s", "ready_s", "guest_first_ms", "guest_entry_ms",
            "boot_to_init_ms"]
    print("median [min, max] of each column")
    print(f"{'nic':<7} {'boot':<5} " + " ".join(f"{c:>22}" for c in cols))
    out = {}
    for (nic, boot), rs in rows.items():
        cells = []
        for c in cols:
            v = [r[c] for r in rs if r[c] == r[c]]  # NaN: not measured on this path
            if not v:
                cells.append("-")
                continue
            fmt = "{:.3f}" if c.endswith("_s") else "{:.1f}"
            cells.append(f"{fmt.format(statistics.median(v))} [{fmt.format(min(v))}, {fmt.format(max(v))}]")
        print(f"{nic:<7} {boot:<5} " + " ".join(f"{c:>22}" for c in cells))
        out[f"{nic}/{boot}"] = rs
    if a.json:
        a.json.write_text(json.dumps({"accel": a.accel, "reps": a.reps, "boots": out,
                                      "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
