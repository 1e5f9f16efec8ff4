"""What one experiment is (RunSpec) and what it gave (RunResult)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from hftlab.analysis import latency
from hftlab.errors import ConfigError
from hftlab.lab.exchange import Pacing
from hftlab.lab.media import MEDIA
from hftlab.lab.vm import BOOTS, NIC_MODELS, choose_boot
from hftlab.model import core
from hftlab.model.suts import SUTS
from hftlab.util.paths import ROOT

__all__ = ["RunSpec", "RunResult", "DEFAULT_DATASET", "SUTS"]

DEFAULT_DATASET = ROOT / "datasets" / "ritch" / "ex20101224.TEST_ITCH_50"


@dataclass
class RunSpec:
    sut: str = "hftos"
    accel: str = "auto"
    nic: str = "e1000"
    #: HFT-OS's boot path (hftlab.lab.vm.choose_boot): bios, pvh, uefi (OVMF), or auto, the
    #: fastest that works here. Linux guests boot as hftlab.lab.guest decides.
    boot: str = "auto"
    dataset: Path = DEFAULT_DATASET
    messages: int | None = None
    rate: float | None = 20_000.0  #: ITCH messages per second; None: as fast as the link takes
    #: How the replayer paces the feed (hftlab.lab.exchange.Pacing): "rate" (`rate`
    #: messages/s; None: back to back), "recorded" (the feed's ITCH timestamps or the
    #: capture's times, divided by `speed`), "burst" (`burst` datagrams back to back every
    #: `every_s`), "max" (back to back). None: "recorded" with `replay`, "rate" otherwise.
    pace: str | None = None
    speed: float = 1.0
    burst: int | None = None
    every_s: float | None = None
    #: a pcap/pcapng whose MoldUDP64 datagrams are sent instead of the packed dataset
    replay: Path | None = None
    #: the replayer thread's SCHED_FIFO priority; 0 (default): SCHED_OTHER. A
    #: SCHED_FIFO replayer starves QEMU's I/O thread on the core they share:
    #: 100,000 one-message datagrams at 25k/s to igb, FIFO 10: the guest got
    #: 9,999 and 117 of 530 orders (the tap queue overflowed), with the
    #: adaptive or a fixed 20 us spin alike; SCHED_OTHER: all 100,002 frames,
    #: golden-equal (tests/test_nic_igb.py::test_igb_ring_wrap_100k_frames).
    replay_rt_prio: int = 0
    #: the replayer's spin before a due time: "adaptive" (10-200 us, as late as the sleep
    #: wakes here) or "fixed" (20 us, the replayer before issue 19; benchmarks/replay.py)
    replay_spin: str = "adaptive"
    out: Path | None = None  #: run directory; default runs/<id>
    config: core.EngineConfig = field(default_factory=core.EngineConfig.default)
    max_payload: int = 1400
    max_count: int = 64
    boot_timeout: float = 60.0
    drain_timeout: float = 30.0
    fault: bool = False  #: make the OS fault on purpose (tests)
    network: str = "auto"  #: tap (root), dgram (no root), auto: tap when root
    hostile: bool = False  #: inject hostile frames, a duplicate and a gap (tests)
    vcpu_core: int | None = 1
    where: str = "guest"  #: baselines: "guest" (under QEMU, like HFT-OS) or "host" (netns)
    baseline_args: tuple[str, ...] = ()  #: extra options for a baseline (e.g. "--busy-poll", "0")
    #: extra QEMU arguments for HFT-OS's VM, appended to its command line (profiling:
    #: benchmarks/tick_profile.py loads a TCG plugin with "-plugin")
    qemu_args: tuple[str, ...] = ()
    hiccups_s: float = 0.0  #: poll-loop gap recorder on the SUT's core after READY (0: off)
    hiccup_threshold_ns: int = 1000  #: gaps longer than this are hiccups
    #: PTP (issue 17): ptp4l masters the run's tap, HFT-OS's slave follows it
    #: (kernel_src/core/ptp.h); the feed starts once it locked (PTP LOCKED on
    #: the console) and ptp_settle_s more seconds passed; ptp.parquet and
    #: run.json's "ptp" hold the slave's series.
    ptp: bool = False
    ptp_domain: int = 0
    ptp_transport: str = "l2"  #: l2 (Ethernet 0x88F7; igb stamps these in hardware) or udp (UDPv4)
    ptp_log_sync: int = -3  #: ptp4l's logSyncInterval: Syncs every 2^n s (-3: 8/s)
    ptp_lock_timeout: float = 120.0
    #: False: feed at once, locked or not (the cost under tcg-icount, where
    #: the guest's TSC counts instructions and cannot follow ptp4l's clock)
    ptp_wait_lock: bool = True
    #: after lock, send hostile PTP frames (hftlab.lab.ptp.hostile_ptp_frames; tests)
    ptp_hostile: bool = False
    ptp_settle_s: float = 0.0
    #: Linux guest vCPUs: 2 (default, a tuned Linux: CPU 1 isolated for the
    #: baseline with isolcpus, nohz_full, rcu_nocbs, interrupts on CPU 0,
    #: whose vCPU shares the host core of QEMU's I/O thread), or 1 (the
    #: baseline shares its one vCPU with the guest kernel, as nothing shares
    #: HFT-OS's). Either way the SUT's vCPU alone has the SUT's host core.
    guest_cpus: int = 2
    #: How HFT-OS's image reaches the machine (hftlab.lab.media): "disk" (IDE
    #: disk, or -kernel for pvh), "usb" (a USB stick), "pxe" (netboot by iPXE
    #: from hftlab's dnsmasq and HTTP server, hftlab.lab.pxe).
    media: str = "disk"
    #: "vm": QEMU runs the SUT; "hw": a machine reached through `iface` and
    #: its serial console `console` (hftlab.lab.hw, hftlab.experiment.hw).
    target: str = "vm"
    iface: str | None = None  #: hw: the host NIC cabled to the SUT
    console: str | None = None  #: hw: the SUT's serial console (a tty)
    baud: int = 115200  #: hw: the console's baud rate
    mac: str | None = None  #: hw: the SUT NIC's MAC (PXE answers only it; a static neighbour)
    device: str | None = None  #: hw, media usb: the stick the run's image is written to
    force: bool = False  #: hw, media usb: write a device that is not removable (deploy's --force)
    power_cmd: str | None = None  #: hw: shell command that powers on / resets the SUT

    def validate(self) -> None:
        if self.sut not in SUTS:
            raise ConfigError(f"sut {self.sut!r}: available: {', '.join(SUTS)}")
        if self.where not in ("guest", "host") or (self.sut == "hftos" and self.where != "guest"):
            raise ConfigError(f"where {self.where!r}: guest or host (host only for baselines)")
        if self.nic not in NIC_MODELS:
            raise ConfigError(f"nic {self.nic!r}: one of {', '.join(NIC_MODELS)}")
        if self.boot not in BOOTS:
            raise ConfigError(f"boot {self.boot!r}: one of {', '.join(BOOTS)}")
        if self.sut != "hftos" and self.boot != "auto":
            # A Linux guest boots its kernel by PVH through qboot when it can
            # (hftlab.lab.guest, run.json guest.boot): a label it did not choose would mislead.
            raise ConfigError(f"boot {self.boot!r} with sut {self.sut!r}: --boot chooses HFT-OS's "
                              "boot path; leave it at auto for a baseline")
        self._validate_media()
        if self.sut == "hftos" and self.target == "vm" and self.media == "disk":
            choose_boot(self.boot)  # uefi without OVMF or pvh without qboot: a ConfigError now
        if self.where == "host" and self.nic != "e1000":
            # The host run's link is a veth pair (run.json: network.mode), no emulated
            # NIC: a run labelled with a NIC it never used would be compared as one.
            raise ConfigError(f"nic {self.nic!r} with where='host': a host run's link is a veth "
                              "pair, --nic applies to guest runs only (leave it at e1000, the default)")
        if not Path(self.dataset).is_file():
            raise ConfigError(f"dataset {self.dataset} does not exist")
        if self.network not in ("auto", "tap", "dgram"):
            raise ConfigError(f"network {self.network!r}: auto, tap or dgram")
        no_tap = self.network == "dgram" or (self.network == "auto" and os.geteuid() != 0)
        if self.ptp and (self.sut != "hftos" or self.target != "vm" or no_tap):
            raise ConfigError("ptp: HFT-OS under QEMU on the tap network only (ptp4l runs on the "
                              "host side of the run's tap: root, network tap or auto)")
        if self.ptp_transport not in ("l2", "udp") or not 0 <= self.ptp_domain <= 127:
            raise ConfigError(f"ptp_transport {self.ptp_transport!r} (l2 or udp), ptp_domain "
                              f"{self.ptp_domain} (0..127)")
        if not -7 <= self.ptp_log_sync <= 4:
            raise ConfigError(f"ptp_log_sync {self.ptp_log_sync}: -7..4 (Syncs every 2^n s)")
        if self.ptp_lock_timeout <= 0 or self.ptp_settle_s < 0:
            raise ConfigError("ptp_lock_timeout must be > 0 s and ptp_settle_s >= 0 s")
        if not 0 <= self.hiccups_s <= 60 or self.hiccup_threshold_ns < 1:
            raise ConfigError("hiccups_s must be in [0, 60] s and hiccup_threshold_ns >= 1")
        if self.guest_cpus not in (1, 2):
            raise ConfigError(f"guest_cpus {self.guest_cpus}: 1, or 2 (one isolated for the baseline)")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError("rate must be > 0 messages/s (or None for back to back)")
        self.pacing().validate()
        if self.replay is not None:
            if not Path(self.replay).is_file():
                raise ConfigError(f"replay capture {self.replay} does not exist")
            if self.messages is not None or self.hostile:
                raise ConfigError("replay sends a capture's datagrams as they are: messages and "
                                  "hostile apply to a dataset")
        if not 0 <= self.replay_rt_prio <= 99 or self.replay_spin not in ("adaptive", "fixed"):
            raise ConfigError("replay_rt_prio: 0 (SCHED_OTHER) to 99; replay_spin: adaptive or fixed")
        self.config.validate()

    def pacing(self) -> Pacing:
        """The replayer's Pacing (hftlab.lab.exchange)."""
        mode = self.pace or ("recorded" if self.replay is not None else
                             "rate" if self.rate is not None else "max")
        return Pacing(mode=mode, rate=self.rate if mode == "rate" else None, speed=self.speed,
                      burst=self.burst, every_s=self.every_s)

    def _validate_media(self) -> None:
        if self.media not in MEDIA or self.target not in ("vm", "hw"):
            raise ConfigError(f"media {self.media!r} / target {self.target!r}: media one of "
                              f"{', '.join(MEDIA)}, target vm or hw")
        if (self.media != "disk" or self.target == "hw") and self.sut != "hftos":
            raise ConfigError("media usb/pxe and target hw boot HFT-OS only (sut hftos)")
        if self.media != "disk" and self.boot not in ("auto", "bios", "uefi"):
            raise ConfigError(f"media {self.media} with boot {self.boot!r}: the firmware boots "
                              "a stick or a NIC (bios; PVH has none)")
        if self.media == "pxe" and self.target == "vm" and self.network == "dgram":
            raise ConfigError("media pxe needs the tap network (DHCP/TFTP/HTTP in the run's namespace)")
        hw_only = {"iface": self.iface, "console": self.console, "device": self.device,
                   "power_cmd": self.power_cmd}
        if self.target == "vm":
            given = sorted(k for k, v in hw_only.items() if v)
            if given:
                raise ConfigError(f"{', '.join(given)}: options of target hw only")
            return
        if not self.iface or not self.console:
            raise ConfigError("target hw needs iface (the host NIC cabled to the SUT) and "
                              "console (its serial console)")
        if self.media not in ("usb", "pxe") or self.boot != "auto":
            raise ConfigError(f"target hw: media usb or pxe (not {self.media!r}) and boot auto "
                              "(the machine's firmware boots what it finds)")
        if self.media == "usb" and not self.device:
            raise ConfigError("target hw, media usb: device (the stick to write the run's image to)")
        if self.media == "pxe" and not self.mac:
            raise ConfigError("target hw, media pxe: mac (the SUT NIC's MAC: hftlab's DHCP "
                              "answers only it, never another machine on IFACE's link)")


@dataclass
class RunResult:
    run_dir: Path
    status: str
    info: dict[str, Any]
    latency: pa.Table | None = None
    report: Path | None = None

    def summary(self) -> dict[str, dict]:
        """Percentiles of the run's headline figures, each with its unit:
        wire_ns (ns) and internal (ns, or instructions under tcg-icount,
        hftlab.analysis.latency.figures), plus the raw internal_cycles."""
        if self.latency is None:
            return {}
        accel = self.info.get("spec", {}).get("accel", "")
        out = {}
        cycles = "instructions" if accel == "tcg-icount" else "cycles"  # the guest TSC's ticks
        for name, col, unit in latency.figures(accel) + [("internal_cycles", "internal_cycles", cycles)]:
            v = self.latency.column(col).drop_null().to_numpy()
            out[name] = {**latency.percentiles(v), "unit": unit}
        return out
