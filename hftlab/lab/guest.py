"""hftlab.lab.guest: a minimal Linux guest for the baselines, from Debian's packages.

The guest is the like-for-like home of a Linux baseline: it boots under the
same QEMU, accel, NIC model and tap as HFT-OS, and runs nothing but the
baseline. It is made of

* Debian 12's kernel (the package linux-image-amd64 points to), fetched with
  ``apt-get download`` and unpacked with ``dpkg-deb -x``, never installed.
  hftlab keeps the bzImage, the ELF ``vmlinux`` cut out of it (so that QEMU
  can boot it through its PVH entry and skip the in-guest decompression),
  and the NIC modules (NIC_MODULES: e1000; virtio_pci and virtio_net; igb)
  with the modules they depend on; what the kernel has built in
  (modules.builtin: ptp and pps_core, which igb uses) is not loaded. These
  are cached under
  ``~/.cache/hftlab/guest/<package>_<version>/`` ($HFTLAB_CACHE moves it).
* an initramfs written per run (a newc cpio, written here: no cpio tool
  needed) holding busybox-static, the modules, the statically linked
  baseline, its engine config and an /init script that loads the NIC
  driver, brings eth0 up, ARP-probes the peer until it answers (the proof
  that frames flow both ways; QEMU's e1000 holds received frames back for a
  second after each RCTL write), prints the timings of its phases and then
  execs the baseline, which prints the ready line, trades, writes the dump
  on the console and leaves QEMU through isa-debug-exit.

For linux-dpdk the NIC belongs to user space: /init loads uio_pci_generic
instead of the NIC driver, reserves 2 MiB hugepages, binds every Ethernet
PCI function to uio_pci_generic through driver_override and execs the
baseline with its EAL options; the baseline answers ARP and proves the path
with its own ARP request to the peer, as HFT-OS does.

Frames that reach QEMU's e1000 before the guest enables RX (RCTL.EN) are
dropped, and after every RCTL write QEMU holds received frames back for one
second of virtual time (its flush_queue_timer): that is why a frame sent to
a freshly booted guest vanished, and why every SUT here says it is ready
only after the peer has answered its ARP request (linux-dpdk logs the wait:
about 0.8 s after rte_eth_dev_start).
"""
from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hftlab.errors import BuildError, RegistryUnreachableError, ToolMissingError
from hftlab.lab.baselines import baseline_args
from hftlab.lab.vm import GUEST_MAC, Vm, VmSpec

__all__ = ["GuestKernel", "cache_dir", "kernel_package", "fetch_kernel", "extract_vmlinux", "guest_phases",
           "module_depends", "builtin_modules", "Cpio", "build_initrd", "guest_vm", "INIT_SCRIPT", "KERNEL_ARGS"]

#: QEMU NIC model -> the guest modules that drive it (their dependencies,
#: from each module's modinfo ``depends``, are added and loaded first).
#: virtio: the PCI transport and the net driver (virtio_net pulls in
#: virtio, virtio_ring, net_failover, failover; virtio_pci the modern and
#: legacy transport libraries); igb: pulls in dca and i2c_algo_bit (ptp and
#: pps_core are built into Debian's 6.1 kernel: modules.builtin). A module
#: the kernel has built in is recorded as such and not loaded.
NIC_MODULES = {"e1000": ("e1000",), "virtio": ("virtio_pci", "virtio_net"), "igb": ("igb",)}

#: For linux-dpdk the NIC belongs to user space: uio_pci_generic (Debian's
#: kernel has no vfio no-IOMMU mode) instead of the NIC's kernel driver.
DPDK_MODULES = ("uio_pci_generic",)

#: Every module the cache keeps (with dependencies); a cached kernel that
#: lacks one of them (an older cache) is unpacked again.
CACHED_MODULES = tuple(m for mods in NIC_MODULES.values() for m in mods) + DPDK_MODULES

#: 2 MiB hugepages the dpdk guest's /init reserves (128 MiB; the guest has 512).
DPDK_HUGEPAGES = 64
DPDK_GUEST_MB = 512

#: EAL options of linux-dpdk in the guest: one lcore, physical addresses
#: (uio_pci_generic has no IOMMU), no files under /var/run, no telemetry
#: thread. The NIC is the only device bound to uio_pci_generic, so the PCI
#: bus scan finds it without -a.
DPDK_EAL_ARGS = ("-n", "1", "--iova-mode=pa", "--in-memory", "--no-telemetry",
                 "--log-level=lib.eal:notice")

#: The guest kernel's command line. A tuned Linux for latency: no speculative
#: execution mitigations, no soft-lockup watchdog, TSC trusted as the clock
#: (under TCG it is derived from QEMU's virtual clock, as HFT-OS's).
def isolation_args(cpu: int) -> str:
    """Kernel arguments that give `cpu` to the baseline alone: no scheduler
    domain, no timer tick while one task runs (nohz_full), RCU callbacks
    and device interrupts elsewhere; the boot CPU keeps the housekeeping."""
    return (f"isolcpus=nohz,domain,managed_irq,{cpu} nohz_full={cpu} rcu_nocbs={cpu} "
            "irqaffinity=0")


KERNEL_ARGS = ("console=ttyS0 loglevel=3 panic=-1 mitigations=off nowatchdog tsc=reliable ipv6.disable=1 "
               "8250.nr_uarts=1")

BUSYBOX_APPLETS = ("sh", "mount", "insmod", "ip", "arping", "cat", "echo", "cut", "sleep",
                   "poweroff", "dmesg", "usleep", "mkdir", "readlink")


def cache_dir() -> Path:
    base = os.environ.get("HFTLAB_CACHE") or Path.home() / ".cache" / "hftlab"
    return Path(base) / "guest"


# --- the kernel -----------------------------------------------------------------

@dataclass(frozen=True)
class GuestKernel:
    """A Debian kernel package unpacked into the cache."""

    package: str  #: e.g. linux-image-6.1.0-56-amd64
    version: str  #: Debian version, e.g. 6.1.192-2
    release: str  #: uname -r
    bzimage: Path
    vmlinux: Path | None  #: ELF with a PVH note, or None when the cut failed
    modules: dict[str, Path]  #: module name -> .ko, each after its dependencies
    depends: dict[str, tuple[str, ...]] = field(default_factory=dict)  #: module -> all its deps
    builtin: tuple[str, ...] = ()  #: wanted modules the kernel has built in (nothing to load)

    def modules_for(self, nic: str, *, dpdk: bool = False) -> list[Path]:
        """The .ko files to insmod, dependencies first: the QEMU NIC model's
        kernel driver, or with ``dpdk`` uio_pci_generic."""
        if nic not in NIC_MODULES:
            raise BuildError(f"no guest modules known for NIC {nic!r}")
        wanted = [m for m in (DPDK_MODULES if dpdk else NIC_MODULES[nic]) if m not in self.builtin]
        missing = [m for m in wanted if m not in self.modules]
        if missing:
            raise BuildError(f"the cached guest kernel {self.package} lacks the modules "
                             f"{missing}: remove {self.bzimage.parent} to unpack it again")
        # kernel.json lists each module after its dependencies.
        order = list(self.modules)
        need: set[str] = set()
        for m in wanted:
            need.add(m)
            need.update(self.depends.get(m, ()))
        return [self.modules[m] for m in sorted(need, key=order.index)]


#: What apt prints when it cannot reach an archive's host at all (apt's
#: methods/connect.cc and the resolver's strerror texts): a name that does not
#: resolve, a connection refused, timed out or without a route. Seen here from
#: `apt-get download` in a network namespace without a network:
#: "E: Failed to fetch http://deb.debian.org/... Temporary failure resolving 'deb.debian.org'".
_UNREACHABLE = re.compile(
    r"Temporary failure resolving|Could not resolve|Could not connect to|Unable to connect to"
    r"|Connection timed out|Network is unreachable|No route to host|Failed to connect")


def _unreachable(output: str) -> str | None:
    """The line of apt's output that says the registry could not be reached, if any."""
    for line in output.splitlines():
        if _UNREACHABLE.search(line):
            return line.strip()
    return None


def _apt_run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which(args[0])
    if not exe:
        raise ToolMissingError(args[0], "a Debian system with apt (apt-get, apt-cache, dpkg-deb)")
    return subprocess.run([exe, *args[1:]], capture_output=True, text=True, cwd=cwd, check=False)


def _apt(*args: str, cwd: Path | None = None) -> str:
    """Run an apt tool; its stdout. A failure is a BuildError, and a
    RegistryUnreachableError when apt says it could not reach the archive."""
    p = _apt_run(*args, cwd=cwd)
    if p.returncode != 0:
        msg = f"`{' '.join(args)}` failed: {(p.stderr or p.stdout).strip()[-800:]}"
        why = _unreachable(p.stderr + "\n" + p.stdout)
        if why:
            raise RegistryUnreachableError(f"Debian's registry cannot be reached: {why} ({msg})")
        raise BuildError(msg)
    return p.stdout


def _kernel_from_lists(meta: str) -> tuple[str, str]:
    deps = _apt("apt-cache", "depends", meta)
    for line in deps.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            pkg = line.split(":", 1)[1].strip()
            break
    else:
        raise BuildError(f"apt-cache: {meta} depends on no linux-image package "
                         "(run `apt-get update` first)")
    pol = _apt("apt-cache", "policy", pkg)
    for line in pol.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return pkg, version
    raise BuildError(f"apt-cache policy {pkg}: no candidate version")


def kernel_package(meta: str = "linux-image-amd64") -> tuple[str, str]:
    """(package, version) of the kernel image Debian's ``meta`` package
    depends on now. apt-cache needs the package lists: as root, a missing
    list is fetched once with ``apt-get update``; when that update could not
    reach the archive (apt-get update warns and exits 0 then), the failure is
    a RegistryUnreachableError."""
    try:
        return _kernel_from_lists(meta)
    except BuildError:
        if os.geteuid() != 0:
            raise
    upd = _apt_run("apt-get", "update", "-q")
    why = _unreachable(upd.stderr + "\n" + upd.stdout)
    if upd.returncode != 0 and not why:
        raise BuildError(f"`apt-get update -q` failed: {(upd.stderr or upd.stdout).strip()[-800:]}")
    try:
        return _kernel_from_lists(meta)
    except RegistryUnreachableError:
        raise
    except BuildError as exc:
        if why:
            raise RegistryUnreachableError(
                f"Debian's registry cannot be reached: `apt-get update` said {why!r}, and the "
                f"package lists do not name the kernel ({exc})") from exc
        raise


def cached_kernels() -> list[Path]:
    """Complete cached kernels (every module this hftlab needs), oldest name first."""
    root = cache_dir()
    if not root.exists():
        return []
    return sorted(p.parent for p in root.glob("linux-image-*/kernel.json") if _complete(p.parent))


def _load(d: Path) -> GuestKernel:
    m = json.loads((d / "kernel.json").read_text())
    return GuestKernel(package=m["package"], version=m["version"], release=m["release"],
                       bzimage=d / m["bzimage"], vmlinux=(d / m["vmlinux"]) if m["vmlinux"] else None,
                       modules={k: d / v for k, v in m["modules"].items()},
                       depends={k: tuple(v) for k, v in m.get("depends", {}).items()},
                       builtin=tuple(m.get("builtin", ())))


def _complete(d: Path) -> bool:
    """A cached kernel with every module this hftlab needs."""
    try:
        m = json.loads((d / "kernel.json").read_text())
    except (OSError, ValueError):
        return False
    have = set(m.get("modules", {})) | set(m.get("builtin", ()))
    return all(x in have for x in CACHED_MODULES) and "depends" in m and "builtin" in m


def fetch_kernel(*, offline_ok: bool = True) -> GuestKernel:
    """The guest kernel, from the cache or fetched and unpacked into it.

    When Debian's registry cannot be reached (apt says so: see
    RegistryUnreachableError) an already cached kernel is used if
    ``offline_ok``; without one the RegistryUnreachableError says both. Any
    other failure (apt, a package without a module this hftlab needs, ...)
    is a BuildError even when a cached kernel exists: it is a bug to fix,
    not a machine that is offline."""
    try:
        return _fetch_kernel()
    except RegistryUnreachableError as exc:
        cached = cached_kernels()
        if offline_ok and cached:
            return _load(cached[-1])
        raise RegistryUnreachableError(
            f"{exc}; and no guest kernel is cached under {cache_dir()}" if not cached else str(exc)
        ) from exc


def _fetch_kernel() -> GuestKernel:
    pkg, version = kernel_package()
    d = cache_dir() / f"{pkg}_{version}"
    if _complete(d):
        return _load(d)
    if d.exists():  # an older cache without some module: unpack again
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d.parent) as tmp:
        t = Path(tmp)
        os.chmod(t, 0o755)  # apt-get download runs as _apt where it can
        _apt("apt-get", "download", f"{pkg}={version}", cwd=t)
        debs = list(t.glob("*.deb"))
        if len(debs) != 1:
            raise BuildError(f"apt-get download {pkg}={version} left {len(debs)} .deb files in {t}")
        _apt("dpkg-deb", "-x", str(debs[0]), str(t / "x"))
        stage = t / "stage"
        stage.mkdir()
        _unpack(t / "x", stage, pkg, version)
        try:
            stage.rename(d)
        except OSError as exc:  # another process unpacked the same kernel meanwhile
            if not _complete(d):
                raise BuildError(f"cannot move the unpacked kernel to {d}: {exc}") from exc
    return _load(d)


def _unpack(x: Path, out: Path, pkg: str, version: str) -> None:
    """Keep the kernel and the NIC modules (with their dependencies)."""
    bz = next((x / "boot").glob("vmlinuz-*"), None)
    if bz is None:
        raise BuildError(f"the package {pkg}={version} has no boot/vmlinuz-*")
    release = bz.name[len("vmlinuz-"):]
    shutil.copy2(bz, out / "bzImage")
    vmlinux = None
    try:
        (out / "vmlinux").write_bytes(extract_vmlinux(bz.read_bytes()))
        vmlinux = "vmlinux"
    except BuildError:
        pass  # bzImage boots too, only slower
    by_name = {p.name[:-3].replace("-", "_"): p for p in (x / "lib" / "modules").rglob("*.ko")}
    builtin = builtin_modules(x)
    (out / "modules").mkdir()
    mods: dict[str, str] = {}
    depends: dict[str, list[str]] = {}
    built_in = [m for m in CACHED_MODULES if m in builtin and m not in by_name]
    for m in CACHED_MODULES:
        if m in built_in:
            continue
        closure = _closure(m, by_name)
        depends[m] = closure
        for dep in [*closure, m]:
            if dep not in mods:
                shutil.copy2(by_name[dep], out / "modules" / f"{dep}.ko")
                mods[dep] = f"modules/{dep}.ko"
    (out / "kernel.json").write_text(json.dumps(
        {"package": pkg, "version": version, "release": release, "bzimage": "bzImage",
         "vmlinux": vmlinux, "modules": mods, "depends": depends, "builtin": built_in},
        indent=2) + "\n")


def builtin_modules(x: Path) -> set[str]:
    """Names of the modules built into the unpacked kernel package at `x`
    (lib/modules/<release>/modules.builtin: one kernel/.../name.ko a line)."""
    out: set[str] = set()
    for f in (x / "lib" / "modules").glob("*/modules.builtin"):
        for line in f.read_text().splitlines():
            if line.endswith(".ko"):
                out.add(line.rsplit("/", 1)[-1][:-3].replace("-", "_"))
    return out


def module_depends(ko: bytes) -> list[str]:
    """The ``depends=`` field of a module's .modinfo section."""
    at = ko.find(b"\0depends=")
    if at < 0:
        return []
    end = ko.index(b"\0", at + 1)
    field = ko[at + len(b"\0depends="): end].decode()
    return [d.replace("-", "_") for d in field.split(",") if d]


def _closure(name: str, by_name: dict[str, Path], seen: set[str] | None = None) -> list[str]:
    """Dependencies of module `name`, each after its own dependencies."""
    seen = set() if seen is None else seen
    out: list[str] = []
    if name not in by_name:
        raise BuildError(f"module {name} is not in the kernel package")
    for dep in module_depends(by_name[name].read_bytes()):
        if dep not in seen:
            seen.add(dep)
            out += _closure(dep, by_name, seen) + [dep]
    return out


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF kernel inside an x86 bzImage.

    The setup header (Linux boot protocol >= 2.08, Documentation/x86/boot.rst)
    gives the compressed payload's offset and length inside the protected-
    mode part; Debian compresses it with xz (CONFIG_KERNEL_XZ)."""
    if bzimage[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", bzimage, 0x206)[0] < 0x208:
        raise BuildError("not a bzImage with boot protocol >= 2.08")
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start: start + length]
    if payload[:6] == b"\xfd7zXZ\0":
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        elf = dec.decompress(payload)
    elif payload[:2] == b"\x1f\x8b":
        import zlib

        elf = zlib.decompressobj(wbits=31).decompress(payload)  # ignores the size trailer
    else:
        raise BuildError(f"bzImage payload compressed with an unsupported method "
                         f"(magic {payload[:6].hex()})")
    if elf[:4] != b"\x7fELF":
        raise BuildError("the bzImage payload is not an ELF file")
    return elf


# --- the initramfs --------------------------------------------------------------

class Cpio:
    """A newc ("070701") cpio archive, as the kernel's initramfs unpacker
    reads it (Documentation/driver-api/early-userspace/buffer-format.rst)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = (self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name) + 1, 0)
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        self.buf.write(hdr + b"\0" * (-len(hdr) % 4))
        self.buf.write(data + b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name.strip("/"), stat.S_IFCHR | mode, rdev=(major, minor))

    def bytes(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        out = self.buf.getvalue()
        return out + b"\0" * (-len(out) % 512)


INIT_SCRIPT = r"""#!/bin/sh
# /init of the hftlab baseline guest (written by hftlab.lab.guest): NIC driver,
# address, wait until the peer answers ARP, then the baseline, alone.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
. /hftlab.env
phase() { echo "guest: phase $1 uptime=$(cut -d' ' -f1 /proc/uptime)"; }
phase init
echo "guest: cpus online=$(cat /sys/devices/system/cpu/online) isolated=$(cat /sys/devices/system/cpu/isolated) nohz_full=$(cat /sys/devices/system/cpu/nohz_full 2>/dev/null)"
# Transparent huge pages where asked for (madvise), as the baselines ask
# for their book: HFT-OS maps everything with 2 MiB pages. Linux turns THP
# off by itself below 512 MiB of RAM (this guest's size) and lets /sys
# turn it back on.
thp=/sys/kernel/mm/transparent_hugepage
echo madvise > $thp/enabled
echo madvise > $thp/defrag
echo "guest: thp enabled=$(cat $thp/enabled) defrag=$(cat $thp/defrag)"
for m in $MODULES; do
    insmod /lib/modules/$m.ko $MODPARAMS || echo "guest: insmod $m failed"
done
ip link set lo up
if [ "$MODE" = dpdk ]; then
    # The NIC to user space: hugepages, then every Ethernet-class PCI
    # function to uio_pci_generic (driver_override: no IDs to know). DPDK's
    # PMD then owns the device; the baseline does ARP itself.
    echo $HUGEPAGES > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages
    echo "guest: hugepages $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"
    for d in /sys/bus/pci/devices/*; do
        case "$(cat $d/class)" in 0x0200*)
            echo uio_pci_generic > $d/driver_override
            echo ${d##*/} > /sys/bus/pci/drivers_probe
            echo "guest: ${d##*/} $(cat $d/vendor):$(cat $d/device) -> uio_pci_generic";;
        esac
    done
    phase link
    exec /bin/baseline $ARGS
fi
ip addr add $IP/$PREFIX dev eth0
ip link set eth0 up
drv=$(readlink /sys/class/net/eth0/device/driver)
echo "guest: eth0 driver=${drv##*/}"
phase link
# QEMU's e1000 delivers nothing for ~1 s after each RCTL write (its flush
# timer): an ARP reply from the peer proves frames flow both ways.
n=0
until arping -q -f -c 1 -w 1 -I eth0 $PEER; do
    n=$((n + 1))
    if [ $n -ge 20 ]; then echo "guest: warning: no ARP reply from $PEER; going on"; break; fi
done
phase arp
exec /bin/baseline $ARGS
"""


def busybox() -> Path:
    exe = Path("/bin/busybox")
    if not exe.is_file():
        raise ToolMissingError("busybox", "apt-get install busybox-static")
    if _elf_has_interp(exe.read_bytes()[:65536]):  # dynamically linked: useless in the guest
        raise ToolMissingError("busybox (static)", "apt-get install busybox-static")
    return exe


def _elf_has_interp(head: bytes) -> bool:
    """True when an ELF64 file has a PT_INTERP program header."""
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    return any(struct.unpack_from("<I", head, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def build_initrd(out: Path, kernel: GuestKernel, nic: str, baseline: Path,
                 env: dict[str, str], files: dict[str, bytes], *, dpdk: bool = False) -> str:
    """Write the run's initramfs to `out`; returns its sha256."""
    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "lib/modules", "tmp", "var/run"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.file("bin/busybox", busybox().read_bytes(), 0o755)
    for applet in BUSYBOX_APPLETS:
        c.symlink(f"bin/{applet}", "busybox")
    c.file("bin/baseline", baseline.read_bytes(), 0o755)
    for ko in kernel.modules_for(nic, dpdk=dpdk):
        c.file(f"lib/modules/{ko.name}", ko.read_bytes())
    c.file("init", INIT_SCRIPT.encode(), 0o755)
    c.file("hftlab.env", "".join(f"{k}='{v}'\n" for k, v in env.items()).encode())
    for name, data in files.items():
        c.file(name, data)
    blob = c.bytes()
    out.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


# --- the VM ---------------------------------------------------------------------

_PHASE = re.compile(rb"guest: phase (\S+) uptime=([0-9.]+)")


def guest_phases(console: bytes) -> dict[str, float]:
    """The init script's ``guest: phase NAME uptime=S`` lines: seconds since
    the guest kernel started."""
    return {m.group(1).decode(): float(m.group(2)) for m in _PHASE.finditer(console)}


def guest_vm(spec, run_dir: Path, accel, net, params, cfg: Path, exe: Path, info: dict):
    """The Vm (not started) that boots the baseline guest on the run's tap."""

    kernel = fetch_kernel()
    dpdk = spec.sut == "linux-dpdk"
    cpus = spec.guest_cpus
    cpus_note = None
    if cpus > 1 and accel.name == "tcg-icount":
        # Under -icount QEMU runs every vCPU in one thread, round robin; a
        # 2-vCPU guest printed nothing in 240 s here. Instruction counts do
        # not need the second CPU: one vCPU, said in run.json.
        cpus, cpus_note = 1, "tcg-icount: 1 vCPU (a 2-vCPU guest does not boot under -icount here)"
    sut_cpu = cpus - 1  # with 2: CPU 0 keeps the housekeeping, CPU 1 is the baseline's
    args = baseline_args(params, "/engine.cfg", peer_mac=net.host_mac, cpu=sut_cpu,
                         debug_exit=0xF4, extra=spec.baseline_args)
    if dpdk:  # EAL options first; the NIC has no kernel interface to take the address from
        args = ["-l", str(sut_cpu), *DPDK_EAL_ARGS, "--", *args, "--bind", net.guest_ip]
    mods = [p.stem for p in kernel.modules_for(spec.nic, dpdk=dpdk)]
    env = {"IP": net.guest_ip, "PREFIX": str(net.prefix), "PEER": net.host_ip,
           "MODULES": " ".join(mods), "MODPARAMS": "", "ARGS": " ".join(args),
           "MODE": "dpdk" if dpdk else "kernel", "HUGEPAGES": str(DPDK_HUGEPAGES)}
    initrd = run_dir / "initrd.cpio"
    digest = build_initrd(initrd, kernel, spec.nic, exe, env, {"engine.cfg": cfg.read_bytes()},
                          dpdk=dpdk)
    boot = kernel.vmlinux or kernel.bzimage
    append = KERNEL_ARGS + (" " + isolation_args(sut_cpu) if cpus > 1 else "")
    info["guest"] = {"kernel_package": kernel.package, "kernel_version": kernel.version,
                     "kernel_release": kernel.release, "boot": boot.name,
                     "cmdline": append, "modules": mods, "initrd_sha256": digest, "cpus": cpus,
                     **({"cpus_note": cpus_note} if cpus_note else {}),
                     "args": args}
    vmspec = VmSpec(image=None, workdir=run_dir, accel=accel, nic=spec.nic,
                    netdev=f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                    mac=GUEST_MAC, netns=net.netns, vcpu_core=spec.vcpu_core,
                    kernel=boot, initrd=initrd, append=append,
                    memory_mb=DPDK_GUEST_MB if dpdk else VmSpec.memory_mb, cpus=cpus,
                    bios=_qboot() if kernel.vmlinux else None)
    return Vm(vmspec)


def _qboot() -> Path | None:
    """qboot: a tiny firmware that jumps straight into a PVH kernel."""
    p = Path("/usr/share/qemu/qboot.rom")
    return p if p.is_file() else None
