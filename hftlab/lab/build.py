"""hftlab.lab.build: the toolchain check, the OS build, and the per-run image.

`build_os()` runs `make -C kernel_src image elf` and returns the disk image
(BIOS and UEFI boot: one hybrid GPT image) or the runtime ELF (PVH boot,
`qemu -kernel`). `write_image()` copies either, or BOOTX64.EFI alone, for a
run and rewrites its config block (struct hftos_config,
kernel_src/runtime/config.h) with the run's addresses, ports, control key,
run length and trading configuration. The block is found by its 8-byte
magic, and its layout comes from the C header through cffi, so the OS is
never recompiled for a run. The ELF holds the block once, in its .config
section inside the PT_LOAD segment QEMU's PVH loader copies to memory, so
the same patch reaches a PVH-booted runtime: no second channel (an -initrd
module, the command line) for the runtime to read and check. The disk
image holds it twice: in the runtime stage 2 loads (after stage 2) and in
the runtime BOOTX64.EFI carries, inside the EFI System Partition's FAT,
where `make image` checked the file to lie in one run of clusters. Both
are patched, and they must be equal before the patch (a stale copy would
boot one path with another configuration).
"""
from __future__ import annotations

import hashlib
import re
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hftlab._core import ffi as _ffi, lib as _lib
from hftlab.model.core import EngineConfig
from hftlab.errors import BuildError, ConfigError, ToolMissingError
from hftlab.util.paths import ROOT

__all__ = ["KERNEL_SRC", "OS_FILES", "EFI_FILE", "SYMS_FILE", "Tool", "toolchain", "build_os", "OsParams",
           "write_image", "symbolize", "fault_summary", "strategy_build_dir",
           "read_image_config", "sha256"]

KERNEL_SRC = ROOT / "kernel_src"

_HINTS = {"nasm": "apt-get install nasm", "gcc": "apt-get install gcc", "ld": "apt-get install binutils",
          "make": "apt-get install make", "objcopy": "apt-get install binutils",
          "qemu-system-x86_64": "apt-get install qemu-system-x86",
          "dumpcap": "apt-get install tshark", "ip": "apt-get install iproute2"}


@dataclass(frozen=True)
class Tool:
    name: str
    path: str | None
    version: str
    hint: str


def _version(exe: str) -> str:
    for flag in ("--version", "-V", "-v"):
        try:
            p = subprocess.run([exe, flag], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (p.stdout or p.stderr).strip()
        if text and p.returncode == 0:  # ip says "Option -version is unknown" (255)
            return text.splitlines()[0]
    return "?"


def toolchain(names: tuple[str, ...] = ("nasm", "gcc", "ld", "objcopy", "make")) -> list[Tool]:
    out = []
    for n in names:
        exe = shutil.which(n)
        out.append(Tool(n, exe, _version(exe) if exe else "", _HINTS.get(n, "")))
    return out


#: What build_os returns per boot path (hftlab.lab.vm.choose_boot): uefi
#: boots the same disk image as bios (its ESP's EFI/BOOT/BOOTX64.EFI).
OS_FILES = {"bios": "hftos.img", "pvh": "hftos.elf", "uefi": "hftos.img"}
#: The UEFI loader with the runtime inside, for the ESP, a USB stick or PXE.
EFI_FILE = "BOOTX64.EFI"


def strategy_build_dir(strategy: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(strategy file, build directory) for a strategy: the bundled trigger
    builds in kernel_src/build, any other in kernel_src/build/strategy-<hash
    of its path>, so that runs of two strategies do not rebuild one tree."""
    from hftlab.model.strategy_cache import DEFAULT, resolve_strategy

    path = resolve_strategy(strategy)
    if path == DEFAULT:
        return path, KERNEL_SRC / "build"
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return path, KERNEL_SRC / "build" / f"strategy-{path.stem}-{tag}"


def build_os(*, quiet: bool = True, boot: str = "bios",
             strategy: str | os.PathLike[str] | None = None) -> Path:
    """make -C kernel_src image elf (with STRATEGY=`strategy`, a C file or
    a bundled name; None: the trigger); returns build/hftos.img (boot "bios"
    or "uefi") or build/hftos.elf (boot "pvh") of that strategy's build."""
    if boot not in OS_FILES:
        raise ConfigError(f"build_os: boot {boot!r}, one of {', '.join(OS_FILES)}")
    missing = [t for t in toolchain() if not t.path]
    if missing:
        raise ToolMissingError(missing[0].name, missing[0].hint)
    src, bdir = strategy_build_dir(strategy)
    cmd = ["make", "-C", str(KERNEL_SRC), "-j2", "image", "elf"]
    if bdir != KERNEL_SRC / "build":
        cmd += [f"BUILD={bdir}", f"STRATEGY={src}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        lines = (p.stdout + p.stderr).splitlines()
        # A refused strategy: its compiler or checker lines name file:line or the symbol.
        mine = [ln for ln in lines if str(src) in ln and ("error" in ln or "warning" in ln)]
        errors = [ln for ln in lines if "error" in ln and not ln.startswith(("cc ", "gcc ", "clang "))]
        tail = "\n".join((mine or errors or lines)[-30:])
        raise BuildError(f"make -C kernel_src image elf (strategy {src}) failed:\n{tail}")
    out = bdir / OS_FILES[boot]
    if not out.exists():
        raise BuildError(f"make succeeded but {out} is missing")
    return out


#: Beside the image: the runtime's function symbols (kernel_src/Makefile's hftos.syms).
SYMS_FILE = "hftos.syms"
_EXCEPTION = re.compile(rb"\*\*\* CPU EXCEPTION: vector (\d+) \(([^)]*)\)[^\n]*\n\s*rip ([0-9a-f]+)")


def symbolize(rip: int, syms: Path) -> str | None:
    """The function holding address rip, as "name+0xoff", from an
    address-sorted symbol file ("addr name" lines); None when outside."""
    best = None
    for line in syms.read_text().splitlines():
        addr, _, name = line.partition(" ")
        a = int(addr, 16)
        if a > rip:
            break
        best = (a, name)
    return None if best is None else f"{best[1]}+{rip - best[0]:#x}"


def fault_summary(serial: bytes, syms: Path) -> str | None:
    """"CPU exception <vector> (<name>) at rip <rip> in <function>" for an
    HFT-OS exception dump in a serial log, None without one."""
    m = _EXCEPTION.search(serial)
    if not m:
        return None
    rip = int(m.group(3), 16)
    where = symbolize(rip, syms) if syms.is_file() else None
    return (f"CPU exception {m.group(1).decode()} ({m.group(2).decode()}) at rip {rip:#x} in "
            f"{where or '? (no ' + str(syms) + ')'}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class OsParams:
    """The per-run part of struct hftos_config."""

    ip_self: str
    ip_peer: str
    mac_peer: str
    md_port: int = 30001
    ctl_port: int = 30002
    order_port: int = 30003
    src_port: int = 30004
    ctl_key: int = 0
    max_messages: int = 0
    log_capacity: int = 1 << 18
    fault: bool = False
    engine: EngineConfig | None = None
    hiccup_ns: int = 0  #: poll-loop gap recorder run time after READY (0: off)
    hiccup_threshold_ns: int = 1000  #: gaps longer than this are hiccups
    ptp: bool = False  #: run the PTP slave (HFTOS_F_PTP) in ptp_domain
    ptp_domain: int = 0
    ptp_wait: bool = True  #: trade only once the slave locked (else HFTOS_F_PTP_NOWAIT)


#: Config block copies per file: one (ELF, runtime.bin, BOOTX64.EFI) or two
#: (the disk image: stage 2's runtime and BOOTX64.EFI's in the ESP).
_MAX_COPIES = 2


def _find_configs(buf: bytearray, what: str = "the image") -> list[int]:
    """Offsets of every config block in buf; all copies must be equal."""
    magic = int(_lib.HFTOS_CONFIG_MAGIC).to_bytes(8, "little")
    size = _ffi.sizeof("struct hftos_config")
    offsets, at = [], buf.find(magic)
    while at >= 0:
        offsets.append(at)
        at = buf.find(magic, at + 1)
    if not offsets:
        raise BuildError(f"{what} has no HFT-OS config block (magic not found)")
    if len(offsets) > _MAX_COPIES:
        raise BuildError(f"{what} has {len(offsets)} config block magics (at most {_MAX_COPIES})")
    first = bytes(buf[offsets[0]: offsets[0] + size])
    for at in offsets[1:]:
        if bytes(buf[at: at + size]) != first:
            raise BuildError(f"{what}: the config blocks at {offsets[0]:#x} and {at:#x} differ "
                             "(one copy of the runtime is stale: rebuild the image)")
    return offsets


def _mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ConfigError(f"bad MAC address {text!r}")
    return bytes(int(p, 16) for p in parts)


def write_image(src: Path, dst: Path, params: OsParams) -> str:
    """Copy `src` (disk image or runtime ELF) to `dst` with its config block
    rewritten; returns dst's sha256."""
    buf = bytearray(src.read_bytes())
    offsets = _find_configs(buf, str(src))
    at = offsets[0]
    size = _ffi.sizeof("struct hftos_config")
    cfg = _ffi.new("struct hftos_config *")
    _ffi.memmove(cfg, bytes(buf[at: at + size]), size)
    if cfg.version != _lib.HFTOS_CONFIG_VERSION or cfg.size != size:
        raise BuildError(f"config block version {cfg.version} size {cfg.size}: hftlab expects "
                         f"version {_lib.HFTOS_CONFIG_VERSION} size {size} (rebuild hftlab)")
    if not 1 <= params.log_capacity <= _lib.HFTOS_LOG_MAX:
        raise ConfigError(f"log_capacity must be in [1, {_lib.HFTOS_LOG_MAX}]")
    _ffi.memmove(cfg.mac_peer, _mac(params.mac_peer), 6)
    cfg.ip_self = int(ipaddress.IPv4Address(params.ip_self))
    cfg.ip_peer = int(ipaddress.IPv4Address(params.ip_peer))
    cfg.md_port, cfg.ctl_port = params.md_port, params.ctl_port
    cfg.order_port, cfg.src_port = params.order_port, params.src_port
    cfg.max_messages, cfg.ctl_key = params.max_messages, params.ctl_key
    cfg.log_capacity = params.log_capacity
    cfg.flags = (cfg.flags & ~_lib.HFTOS_F_FAULT) | (_lib.HFTOS_F_FAULT if params.fault else 0)
    cfg.flags = (cfg.flags & ~_lib.HFTOS_F_HICCUPS) | (_lib.HFTOS_F_HICCUPS if params.hiccup_ns else 0)
    cfg.hiccup_ns, cfg.hiccup_threshold_ns = params.hiccup_ns, params.hiccup_threshold_ns
    cfg.flags = (cfg.flags & ~_lib.HFTOS_F_PTP) | (_lib.HFTOS_F_PTP if params.ptp else 0)
    if not 0 <= params.ptp_domain <= 255:
        raise ConfigError(f"ptp_domain {params.ptp_domain}: 0..255")
    cfg.ptp_domain = params.ptp_domain
    cfg.flags = (cfg.flags & ~_lib.HFTOS_F_PTP_NOWAIT) | \
        (_lib.HFTOS_F_PTP_NOWAIT if params.ptp and not params.ptp_wait else 0)
    eng = (params.engine or EngineConfig.default())._cdata()
    _ffi.memmove(_ffi.addressof(cfg, "engine"), eng, _ffi.sizeof("struct engine_config"))
    for at in offsets:
        buf[at: at + size] = bytes(_ffi.buffer(cfg))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(buf)
    os.replace(tmp, dst)
    return hashlib.sha256(buf).hexdigest()


def read_image_config(path: Path) -> dict:
    """The config block of an image, ELF or EFI file, as a dict (for run.json
    and tests); `copies` says how many equal copies the file holds."""
    buf = bytearray(path.read_bytes())
    offsets = _find_configs(buf, str(path))
    at = offsets[0]
    cfg = _ffi.new("struct hftos_config *")
    _ffi.memmove(cfg, bytes(buf[at: at + _ffi.sizeof(cfg[0])]), _ffi.sizeof(cfg[0]))
    return {"offset": at, "copies": len(offsets), "version": int(cfg.version), "flags": int(cfg.flags),
            "ip_self": str(ipaddress.IPv4Address(int(cfg.ip_self))),
            "ip_peer": str(ipaddress.IPv4Address(int(cfg.ip_peer))),
            "mac_peer": ":".join(f"{b:02x}" for b in bytes(_ffi.buffer(cfg.mac_peer))),
            "md_port": int(cfg.md_port), "ctl_port": int(cfg.ctl_port),
            "order_port": int(cfg.order_port), "src_port": int(cfg.src_port),
            "max_messages": int(cfg.max_messages), "log_capacity": int(cfg.log_capacity)}
