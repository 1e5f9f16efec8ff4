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
Usage:
    python benchmarks/boot.py [--reps 5] [--nics e1000,virtio] [--boots bios,pvh,uefi]
                              [--accel tcg] [--json OUT]
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
_FIRST_TSC = re.compile(rb"hftos (?:pvh|uefi) tsc=0x([0-9a-f]+)")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--nics", default="e1000,virtio")
    ap.add_argument("--boots", default="bios,pvh,uefi")
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
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
