"""hftlab.lab.vm: launch a system under test in QEMU, and always clean up.

* :func:`choose_boot` decides how HFT-OS boots (``bios``: SeaBIOS reads the
  disk image, stage 1 and 2 load the runtime; ``pvh``: qboot and QEMU's
  ``-kernel`` put the runtime ELF in memory and enter its PVH note's 32-bit
  entry; ``uefi``: OVMF on q35 starts the same disk image's
  EFI/BOOT/BOOTX64.EFI, which carries the runtime) and says why;
  :func:`boot_media` gives VmSpec's image/kernel/bios/uefi.
* :func:`choose_accel` decides between KVM and TCG and says why. ``auto``
  picks KVM only when /dev/kvm opens *and* the CPU advertises vmx or svm:
  a /dev/kvm backed by KVM's PVM flavour (no vmx/svm, /sys/module/kvm_pvm)
  emulates ring-0 code about 1000x slower than TCG, so it is refused.
* :class:`Vm` starts qemu-system-x86_64 with serial to a file, a QMP socket
  (qemu.qmp) for status and quit, isa-debug-exit for the guest's exit code,
  pins the vCPU thread to its own core, enforces a deadline, and tears down
  on every path (success, failure, timeout, Ctrl-C): QMP quit, then SIGTERM,
  then SIGKILL of the whole process group.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from hftlab.util.proc import spawn
from hftlab.errors import ConfigError, RunError, ToolMissingError

#: The MAC address of the SUT's NIC (HFT-OS's and the Linux guest's, on every NIC model).
GUEST_MAC = "52:54:00:48:46:54"

#: hftlab's NIC names -> QEMU's device and the options every run gives it.
#: e1000: 82540EM; virtio: virtio-net-pci, modern (virtio 1.0) transport only,
#: with QEMU's deepest RX queue (1024; default 256): 100k one-message frames
#: at 50k/s on this 2-core host lost 28-49% with 256 (QEMU stops reading the
#: tap each time the ring runs dry and the tap queue overflows) and 0-7% with
#: 1024 (4 runs each; the ring-wrap feed of tests/test_nic_virtio.py at 50k/s);
#: igb: 82576 (QEMU >= 8.1), the NIC with PTP hardware timestamps.
NIC_MODELS: dict[str, tuple[str, str]] = {
    "e1000": ("e1000", ""),
    "virtio": ("virtio-net-pci", ",disable-legacy=on,rx_queue_size=1024"),
    "igb": ("igb", ""),
}

__all__ = ["NIC_MODELS", "AccelChoice", "BootChoice", "ConsoleProcess", "choose_accel", "choose_boot",
           "boot_media", "cpu_flags", "Vm", "VmSpec", "qemu_binary", "qemu_version",
           "debug_exit_status", "ACCELS", "BOOTS", "QBOOT", "OVMF_CODE", "OVMF_VARS", "UEFI_QEMU_ARGS"]

ACCELS = ("auto", "kvm", "tcg", "tcg-icount")
#: HFT-OS's boot paths; auto: the fastest that works here (pvh with qboot, else bios).
BOOTS = ("auto", "bios", "pvh", "uefi")
#: qboot (Debian's qemu-system-data): minimal firmware that enters a PVH kernel.
QBOOT = Path("/usr/share/qemu/qboot.rom")
_UNIX_PATH_MAX = 108  #: sizeof(sockaddr_un.sun_path), the NUL included
#: OVMF (Debian's ovmf): the UEFI firmware, read-only, and the template of
#: its variable store, which each VM gets a copy of (OVMF writes boot entries).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
#: What a UEFI boot adds to QEMU's command line: q35 (OVMF's machine), and
#: S3 off: with S3 on, OVMF keeps its S3 resume state (lock box, PEI memory)
#: as ACPI NVS at 8-9 MiB, inside the runtime's fixed range [1 MiB, end of
#: .bss), and the loader refuses it (boot error S); HFT-OS never sleeps.
UEFI_QEMU_ARGS = ("-machine", "q35", "-global", "ICH9-LPC.disable_s3=1")


def debug_exit_status(code: int) -> int:
    """QEMU's exit status for a value written to isa-debug-exit."""
    return (code << 1) | 1


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator a run uses and the QEMU arguments that select it."""

    name: str  #: "kvm", "kvm-pvm", "tcg" or "tcg-icount"
    reason: str
    args: tuple[str, ...]
    cpu: str


#: KVM's CPU model: QEMU with KVM needs arch-capabilities masked on some
#: hosts (QEMU 7.2 and this machine's PVM KVM alike).
KVM_CPU = "host,-arch-capabilities"


def _kvm_usable(dev: Path, flags: set[str], pvm_marker: Path) -> tuple[str, str]:
    """("hw" | "pvm" | "", why): a hardware-assisted KVM, KVM's PVM flavour
    (no vmx/svm: guest ring 0 is emulated, CPL3 runs natively), or none."""
    if not dev.exists():
        return "", f"{dev} does not exist"
    try:
        fd = os.open(dev, os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return "", f"{dev} cannot be opened ({exc.strerror})"
    if flags & {"vmx", "svm"}:
        return "hw", f"{dev} works and the CPU has {'vmx' if 'vmx' in flags else 'svm'}"
    if pvm_marker.exists():
        return "pvm", (f"{dev} opens, the CPU shows neither vmx nor svm and KVM's PVM flavour "
                       f"is loaded ({pvm_marker}): guest ring 0 runs by emulation (~2 us an "
                       "instruction), CPL3 natively")
    return "", (f"{dev} opens but the CPU shows neither vmx nor svm and {pvm_marker} is absent: "
                "no hardware virtualisation to use")


def choose_accel(requested: str = "auto", *, dev: str | os.PathLike[str] = "/dev/kvm",
                 cpuinfo: str | None = None,
                 pvm_marker: str | os.PathLike[str] = "/sys/module/kvm_pvm",
                 pvm_image: bool = False) -> AccelChoice:
    """Resolve ``requested`` (auto, kvm, tcg, tcg-icount) to an accelerator.

    KVM's PVM flavour (kvm_pvm loaded, no vmx/svm) is taken, as "kvm-pvm",
    only for a guest that runs its hot loop at CPL3: ``pvm_image`` (HFT-OS
    booted by PVH: arch/x86_64/ring.h). A guest that keeps ring 0 busy (a
    Linux kernel, HFT-OS before the CPL3 loop) would run by emulation,
    about 1000x slower than TCG, so auto picks TCG for it and kvm refuses."""
    if requested not in ACCELS:
        raise ConfigError(f"accel {requested!r}: choose one of {', '.join(ACCELS)}")
    tcg = ("-accel", "tcg")
    if requested == "tcg":
        return AccelChoice("tcg", "requested", tcg, "max")
    if requested == "tcg-icount":
        return AccelChoice("tcg-icount", "requested: the guest clock counts instructions",
                           ("-accel", "tcg", "-icount", "shift=0,sleep=off"), "max")
    kind, why = _kvm_usable(Path(dev), cpu_flags(cpuinfo), Path(pvm_marker))
    if kind == "pvm" and not pvm_image:
        kind, why = "", why + "; this guest runs ring-0 code on its hot path (only HFT-OS booted by PVH runs its loop at CPL3)"
    if not kind:
        if requested == "kvm":
            raise ConfigError(f"accel kvm is not usable here: {why}")
        return AccelChoice("tcg", f"auto chose TCG: {why}", tcg, "max")
    name = "kvm" if kind == "hw" else "kvm-pvm"
    if requested == "auto":
        why = f"auto chose {name.upper()}: {why}"
    return AccelChoice(name, why, ("-accel", "kvm"), KVM_CPU)


#: runtime/image_header.h: the image header ("HFTR", version) and its
#: feature word; HFTOS_IMAGE_F_CPL3_LOOP: the trading loop runs at CPL3.
IMAGE_MAGIC = b"HFTR"
IMAGE_OFF_FEATURES = 48
IMAGE_CONFIG_OFFSET = 64
IMAGE_F_CPL3_LOOP = 0x1


def image_features(path: str | os.PathLike[str]) -> int:
    """The HFTOS_IMAGE_F_* word of an HFT-OS runtime ELF, runtime.bin or
    disk image (the first header whose config block follows it at
    HFTOS_CONFIG_OFFSET); ConfigError if the file holds none."""
    from hftlab.lab.build import _find_configs  # the config block's magic lives there

    buf = bytearray(Path(path).read_bytes())
    for cfg in _find_configs(buf, str(path)):
        hdr = cfg - IMAGE_CONFIG_OFFSET
        if hdr >= 0 and buf[hdr: hdr + 4] == IMAGE_MAGIC:
            return int.from_bytes(buf[hdr + IMAGE_OFF_FEATURES: hdr + IMAGE_OFF_FEATURES + 4], "little")
    raise ConfigError(f"{path}: no HFT-OS image header before its config block")


@dataclass(frozen=True)
class BootChoice:
    """How HFT-OS boots: "bios" (disk image), "pvh" (ELF through qboot) or
    "uefi" (the disk image's BOOTX64.EFI through OVMF)."""

    name: str
    reason: str
    firmware: Path | None = None  #: -bios (qboot for pvh), OVMF's code (uefi); None: SeaBIOS
    vars_template: Path | None = None  #: uefi: OVMF's variable store, copied per VM


def choose_boot(requested: str = "auto", *, qboot: str | os.PathLike[str] = QBOOT,
                ovmf_code: str | os.PathLike[str] = OVMF_CODE,
                ovmf_vars: str | os.PathLike[str] = OVMF_VARS) -> BootChoice:
    """Resolve ``requested`` (auto, bios, pvh, uefi) to a boot path.

    auto takes pvh when qboot is installed: it skips SeaBIOS, the disk reads
    and stage 1/2 (figures: docs/architecture.md, "Booting HFT-OS"); uefi is
    never chosen by auto (OVMF's start alone takes seconds under TCG)."""
    if requested not in BOOTS:
        raise ConfigError(f"boot {requested!r}: choose one of {', '.join(BOOTS)}")
    if requested == "uefi":
        for part in (Path(ovmf_code), Path(ovmf_vars)):
            if not part.is_file():
                raise ConfigError(f"boot uefi needs OVMF at {part} (apt-get install ovmf)")
        return BootChoice("uefi", f"requested (OVMF {ovmf_code}, q35)", Path(ovmf_code), Path(ovmf_vars))
    fw = Path(qboot)
    if requested == "bios":
        return BootChoice("bios", "requested")
    if fw.is_file():
        why = "requested" if requested == "pvh" else f"auto chose PVH: {fw} is installed"
        return BootChoice("pvh", why, fw)
    if requested == "pvh":
        raise ConfigError(f"boot pvh needs qboot at {fw} (apt-get install qemu-system-data)")
    return BootChoice("bios", f"auto chose BIOS: no qboot at {fw} for PVH")


def boot_media(boot: BootChoice, os_file: Path) -> dict[str, Path | None]:
    """VmSpec's image/kernel/bios(/uefi) for HFT-OS: os_file is the disk image
    (bios, uefi) or the runtime ELF (pvh), as hftlab.lab.build.build_os
    returns them."""
    if boot.name == "pvh":
        return {"image": None, "kernel": os_file, "bios": boot.firmware}
    if boot.name == "uefi":
        assert boot.firmware is not None and boot.vars_template is not None
        return {"image": os_file, "kernel": None, "bios": None,
                "uefi": (boot.firmware, boot.vars_template)}
    return {"image": os_file, "kernel": None, "bios": None}


def qemu_binary() -> str:
    exe = shutil.which("qemu-system-x86_64")
    if not exe:
        raise ToolMissingError("qemu-system-x86_64", "apt-get install qemu-system-x86")
    return exe


@functools.lru_cache(maxsize=None)
def device_properties(model: str, exe: str | None = None) -> frozenset[str]:
    """The properties QEMU's `model` device takes (`-device MODEL,help`): the
    set differs between QEMU releases (e1000's `autonegotiation` went in 9.0)."""
    out = subprocess.run([exe or qemu_binary(), "-device", f"{model},help"],
                         capture_output=True, text=True, check=False).stdout
    return frozenset(line.split("=", 1)[0].strip() for line in out.splitlines()
                     if "=" in line and line.startswith(" "))


def qemu_version(exe: str | None = None) -> str:
    out = subprocess.run([exe or qemu_binary(), "--version"], capture_output=True, text=True,
                         check=False).stdout
    return out.splitlines()[0] if out else "unknown"


@dataclass
class VmSpec:
    """What to boot and how."""

    image: Path | None  #: raw disk image (HFT-OS), or None to boot `kernel`
    workdir: Path  #: serial.log and qmp.sock go here (qmp_path: a short stand-in for a deep one)
    accel: AccelChoice
    memory_mb: int = 256
    cpus: int = 1  #: vCPUs; the last one is the SUT's (pinned to vcpu_core)
    nic: str | None = None  #: a NIC_MODELS key (e1000, virtio, igb) or None
    netdev: str | None = None  #: e.g. "tap,id=n0,ifname=hft0,script=no,downscript=no"
    mac: str | None = None
    netns: str | None = None  #: run QEMU inside this network namespace
    vcpu_core: int | None = 1  #: pin the vCPU thread here; everything else elsewhere
    extra: Sequence[str] = field(default_factory=tuple)
    # A Linux guest (hftlab.lab.guest) boots a kernel directly instead of a disk:
    kernel: Path | None = None  #: bzImage, or an ELF with a PVH note (vmlinux, hftos.elf)
    initrd: Path | None = None
    append: str | None = None  #: kernel command line
    bios: Path | None = None  #: firmware instead of SeaBIOS (qboot for PVH)
    #: UEFI boot of `image`: (OVMF code, variable store template): q35 with
    #: S3 off (UEFI_QEMU_ARGS), OVMF as pflash, the store copied to workdir by
    #: Vm.start, the disk first in the boot order (bootindex=0: no PXE try).
    uefi: tuple[Path, Path] | None = None

    @property
    def uefi_vars(self) -> Path:
        """The VM's own copy of OVMF's variable store."""
        return self.workdir / "OVMF_VARS.fd"

    @property
    def qmp_path(self) -> Path:
        """The QMP socket: workdir/qmp.sock, or, when that path is too long for
        a unix socket (sun_path: 108 bytes with its NUL; QEMU refuses it, as in
        a sweep's runs/<key>/ under pytest's tmp_path), a name in the temp
        directory derived from the workdir (the same for every caller)."""
        sock = self.workdir / "qmp.sock"
        if len(os.fsencode(sock)) < _UNIX_PATH_MAX:
            return sock
        digest = hashlib.sha256(os.fsencode(self.workdir.resolve())).hexdigest()[:20]
        return Path(tempfile.gettempdir()) / f"hftlab-qmp-{digest}.sock"

    def command(self) -> list[str]:
        cmd = [qemu_binary(), *self.accel.args, "-cpu", self.accel.cpu, "-m", str(self.memory_mb),
               *(["-smp", str(self.cpus)] if self.cpus > 1 else []),
               "-display", "none", "-vga", "none", "-no-reboot", "-nodefaults",
               "-serial", f"file:{self.workdir / 'serial.log'}",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        cmd += self._disk_args()
        cmd += self._kernel_args()
        if self.nic:
            if not self.netdev:
                raise ConfigError("a NIC needs a netdev")
            if self.nic not in NIC_MODELS:
                raise ConfigError(f"nic {self.nic!r}: one of {', '.join(NIC_MODELS)}")
            model, opts = NIC_MODELS[self.nic]
            dev = f"{model},netdev=n0,romfile={opts}"
            if self.mac:
                dev += f",mac={self.mac}"
            if self.nic == "e1000" and "autonegotiation" in device_properties("e1000"):
                # QEMU < 9.0: skips the link auto-negotiation delay (~2 s of boot)
                dev += ",autonegotiation=off"
            cmd += ["-netdev", self.netdev, "-device", dev]
        cmd += list(self.extra)
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    def _disk_args(self) -> list[str]:
        """The firmware (OVMF's flash when uefi is set; SeaBIOS by default)
        and the disk, if any (a USB stick or PXE boot has none here)."""
        if self.uefi is None:
            if self.image is None:
                return []
            return ["-drive", f"format=raw,file={self.image},if=ide,index=0,media=disk"]
        code, _ = self.uefi
        fw = [*UEFI_QEMU_ARGS,
              "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
              "-drive", f"if=pflash,format=raw,unit=1,file={self.uefi_vars}"]
        if self.image is None:
            return fw
        return [*fw, "-drive", f"if=none,id=disk0,format=raw,file={self.image}",
                "-device", "ide-hd,drive=disk0,bus=ide.0,bootindex=0"]

    def _kernel_args(self) -> list[str]:
        if self.kernel is None:
            if self.image is None:
                raise ConfigError("a VM needs a disk image or a kernel")
            return []
        out = ["-kernel", str(self.kernel)]
        if self.initrd is not None:
            out += ["-initrd", str(self.initrd)]
        if self.append:
            out += ["-append", self.append]
        if self.bios is not None:
            out += ["-bios", str(self.bios)]
        return out


class ConsoleProcess:
    """A SUT process whose console goes to serial_path: what run._trade
    needs from it (poll, wait, wait_serial, output_tail)."""

    what = "the SUT"
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    started_at = 0.0
    serial_path: Path

    def poll(self) -> int | None:
        if self.proc is not None:
            self.returncode = self.proc.poll()
        return self.returncode

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; RunError after `timeout` seconds."""
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunError(f"{self.what} did not exit within {timeout:.0f} s") from None
        return self.returncode

    def output_tail(self, n: int = 2000) -> str:
        return self.serial_path.read_bytes()[-n:].decode("utf-8", "replace")

    def wait_serial(self, marker: bytes, timeout: float) -> float:
        """Wait until the console shows `marker`; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.serial_path.read_bytes():
                return time.monotonic() - self.started_at
            if self.poll() is not None:
                raise RunError(f"{self.what} exited with status {self.returncode} before "
                               f"{marker!r} appeared on its console:\n{self.output_tail()}")
            time.sleep(0.005)
        raise RunError(f"{marker!r} did not appear on the console of {self.what} within "
                       f"{timeout:.0f} s:\n{self.output_tail()}")


class Vm(ConsoleProcess):
    """A running QEMU; use as a context manager so teardown always runs."""

    what = "QEMU"

    def __init__(self, spec: VmSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.vcpu_tids: list[int] = []
        self.returncode: int | None = None

    @property
    def serial_path(self) -> Path:
        return self.spec.workdir / "serial.log"

    def start(self) -> "Vm":
        self.spec.workdir.mkdir(parents=True, exist_ok=True)
        self.spec.qmp_path.unlink(missing_ok=True)
        self.serial_path.write_bytes(b"")
        if self.spec.uefi is not None:
            tmp = self.spec.uefi_vars.with_name(self.spec.uefi_vars.name + ".tmp")
            shutil.copyfile(self.spec.uefi[1], tmp)
            os.replace(tmp, self.spec.uefi_vars)
        self.started_at = time.monotonic()
        self.proc = spawn(self.spec.command(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self

    # -- QMP -------------------------------------------------------------
    def qmp(self, cmd: str, args: dict | None = None, timeout: float = 5.0):
        """Run one QMP command on a fresh connection and return its result."""
        from qemu.qmp import QMPClient

        async def go():
            client = QMPClient("hftlab")
            sock = str(self.spec.qmp_path)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await client.connect(sock)
                    break
                except Exception:
                    if time.monotonic() > deadline or self.poll() is not None:
                        raise
                    await asyncio.sleep(0.02)
            try:
                return await asyncio.wait_for(client.execute(cmd, args), timeout)
            finally:
                await client.disconnect()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(go())
        # Inside a running loop (Jupyter): run ours on a thread of its own.
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()

    def rip_samples(self, n: int = 5, every_s: float = 0.05) -> list[int]:
        """The instruction pointer of the SUT's vCPU (the last), n times
        every_s apart, from QEMU's monitor: where a guest that stopped
        answering is. Empty when the monitor does not answer."""
        rips = []
        for _ in range(n):
            try:
                out = self.qmp("human-monitor-command", {"command-line": "info registers -a"})
            except Exception:  # a dead or wedged QEMU: nothing more to learn
                break
            found = re.findall(r"RIP=([0-9a-f]+)", out)
            if found:
                rips.append(int(found[-1], 16))
            time.sleep(every_s)
        return rips

    def pin(self) -> list[int]:
        """Pin the SUT's vCPU thread (the last vCPU) to spec.vcpu_core and
        the rest of QEMU, other vCPUs included, away from it. Returns the
        vCPU thread ids."""
        core = self.spec.vcpu_core
        if core is None or self.proc is None:
            return []
        ncpu = os.cpu_count() or 1
        cpus = self.qmp("query-cpus-fast")
        self.vcpu_tids = [int(c["thread-id"]) for c in sorted(cpus, key=lambda c: c["cpu-index"])]
        sut = self.vcpu_tids[-1]
        pid = self._qemu_pid()
        others = {c for c in range(ncpu) if c != core % ncpu} or {0}
        for tid in (int(t) for t in os.listdir(f"/proc/{pid}/task")):
            try:
                os.sched_setaffinity(tid, {core % ncpu} if tid == sut else others)
            except OSError:
                pass  # a thread that ended meanwhile
        return self.vcpu_tids

    def _qemu_pid(self) -> int:
        """The qemu process (under `ip netns exec` it is a child that exec'd)."""
        assert self.proc is not None
        pid = self.proc.pid
        for _ in range(50):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                break
            if "qemu" in exe:
                return pid
            time.sleep(0.01)
        return pid

    def status(self) -> str:
        return self.qmp("query-status")["status"]

    # -- lifecycle -------------------------------------------------------
    def output_tail(self, n: int = 2000) -> str:
        text = super().output_tail(n)
        if self.proc is not None and self.proc.poll() is not None and self.proc.stdout:
            text += "\n[qemu] " + self.proc.stdout.read().decode("utf-8", "replace")[-n:]
        return text

    def stop(self) -> None:
        """Quit QEMU: QMP quit, then SIGTERM, then SIGKILL to its process group."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.qmp("quit", timeout=1.0)
            self.proc.wait(timeout=2.0)
            return
        except Exception:
            pass
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "Vm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.spec.qmp_path.unlink(missing_ok=True)
