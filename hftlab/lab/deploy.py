"""hftlab.lab.deploy: HFT-OS onto a USB stick, and into a PXE (TFTP) tree.

* :func:`inspect_device` says what a block device is, from sysfs and the
  mount tables: size, removable or on a USB bus, mounted, in use, read-only.
* :func:`check_device` refuses a device that is read-only, smaller than the
  image, mounted or used by another device (swap, device-mapper, md), a
  partition, or, unless ``force``, neither removable nor on USB. ``force``
  lifts only that last refusal: a loop device, an SD card on an internal
  reader or a USB-SATA bridge reporting a fixed disk are legitimate targets
  that look fixed. A mounted device or one too small never is: the write
  would corrupt a live file system (the kernel refuses the O_EXCL open
  anyway) or leave a cut-short image.
* :func:`write_to_device` writes an image so that no partial image is ever
  left silently: the first :data:`HEAD` bytes (MBR, primary GPT) are zeroed
  and synced first, the rest written and synced, the head written last and
  synced, then everything read back past the page cache and its SHA-256
  compared. Any failure or interruption zeroes the head again (no boot
  sector: firmware skips the device) and raises :class:`DeployError` (an
  interruption re-raises KeyboardInterrupt with a note).
* :func:`write_pxe_tree` writes what a lab's DHCP/TFTP/HTTP server needs to
  netboot HFT-OS through iPXE's HTTP SAN boot (``sanboot``): the image,
  padded to whole 255x63 cylinders, an iPXE script, iPXE itself for NICs
  whose firmware PXE is not iPXE, and a manifest.

Why HTTP SAN boot (docs: README "Deploy"): iPXE attaches the same disk
image, byte for byte, as BIOS drive 0x80 (int 13h over HTTP range requests)
or as a UEFI block device, so both firmware paths boot what the USB stick
holds, with the per-run config block inside it, and the kernel needs no
second entry point. The padding: iPXE derives the int 13h geometry from the
partition entry's end (255 heads, 63 sectors) and the cylinder count from
the size; a 1 MiB image has 0 cylinders and every CHS read of the MBR fails
("Input/output error"), so the served copy is at least one cylinder (7.8 MiB,
sparse).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from hftlab.errors import ConfigError, HftlabError
from hftlab.lab.build import read_image_config, sha256
from hftlab.util.io import AtomicPath

__all__ = ["DeployError", "Device", "DeployResult", "inspect_device", "check_device",
           "write_to_device", "read_back", "write_pxe_tree", "pad_for_ipxe", "HEAD", "CYLINDER",
           "IPXE_SCRIPT", "PXE_IMAGE", "IPXE_CHAIN"]

#: Bytes written last and zeroed first: the MBR and a primary GPT (34 sectors) with room.
HEAD = 64 << 10
#: One cylinder of iPXE's int 13h geometry guess (255 heads x 63 sectors of 512 bytes).
CYLINDER = 255 * 63 * 512
CHUNK = 1 << 20
BLKFLSBUF = 0x1261  #: linux/fs.h: flush the device's buffer cache
IPXE_SCRIPT = "boot.ipxe"
PXE_IMAGE = "hftos.img"
#: iPXE for a NIC whose firmware PXE is not iPXE: BIOS (UNDI) and UEFI (Debian's ipxe).
IPXE_CHAIN = {"undionly.kpxe": Path("/usr/lib/ipxe/undionly.kpxe"),
              "ipxe.efi": Path("/usr/lib/ipxe/ipxe.efi")}


class DeployError(HftlabError):
    """Writing HFT-OS to a device or a PXE tree was refused or failed."""


@dataclass(frozen=True)
class Device:
    """A block device as sysfs and the mount tables describe it."""

    path: str
    name: str  #: the kernel's name: sdb, loop3, mmcblk0
    size: int  #: bytes
    removable: bool  #: sysfs removable flag
    usb: bool  #: on a USB bus (USB sticks may report removable 0)
    read_only: bool
    partition: bool  #: a partition, not a whole device
    mounts: tuple[str, ...] = ()  #: mount points and swap of the device or its partitions
    holders: tuple[str, ...] = ()  #: device-mapper / md devices built on it

    @property
    def looks_removable(self) -> bool:
        return self.removable or self.usb


@dataclass
class DeployResult:
    device: str
    image: str
    bytes: int
    sha256: str
    seconds: float
    verified: bool
    config: dict = field(default_factory=dict)


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def _devnum(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DeployError(f"{path}: cannot stat ({exc.strerror})") from None
    if not stat.S_ISBLK(st.st_mode):
        raise DeployError(f"{path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _mounted(devs: set[str], proc: Path) -> list[str]:
    """Mount points (mountinfo's major:minor column) and swap areas of devs."""
    out = []
    for line in _read(proc / "self" / "mountinfo").splitlines():
        f = line.split()
        if len(f) > 4 and f[2] in devs:
            out.append(f[4])
    for line in _read(proc / "swaps").splitlines()[1:]:
        name = line.split()[0] if line.split() else ""
        try:
            st = os.stat(name)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode) and f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" in devs:
            out.append(f"swap {name}")
    return out


def inspect_device(path: str | os.PathLike[str], *, sysfs: Path = Path("/sys"),
                   proc: Path = Path("/proc")) -> Device:
    """What the block device at `path` is (sysfs /sys/dev/block/MAJ:MIN)."""
    p = os.fspath(path)
    major, minor = _devnum(p)
    node = sysfs / "dev" / "block" / f"{major}:{minor}"
    real = node.resolve()
    if not (real / "size").exists():
        raise DeployError(f"{p}: no sysfs entry at {node}")
    partition = (real / "partition").exists()
    whole = real.parent if partition else real
    # The device and its partitions: sdb, sdb1 ... (each partition's own dev file)
    devs = {_read(whole / "dev")} | {_read(c / "dev") for c in whole.iterdir()
                                     if (c / "partition").exists()}
    holders = [h.name for d in [whole, *(c for c in whole.iterdir() if (c / "partition").exists())]
               for h in sorted((d / "holders").glob("*"))]
    return Device(path=p, name=real.name, size=int(_read(real / "size", "0")) * 512,
                  removable=_read(whole / "removable") == "1",
                  usb="/usb" in str(whole), read_only=_read(real / "ro") == "1",
                  partition=partition, mounts=tuple(_mounted(devs - {""}, proc)),
                  holders=tuple(holders))


def check_device(dev: Device, image_size: int, *, force: bool = False) -> None:
    """Raise DeployError when `dev` must not receive an image of image_size bytes."""
    if dev.partition:
        raise DeployError(f"{dev.path} ({dev.name}) is a partition: give the whole device")
    if dev.read_only:
        raise DeployError(f"{dev.path} ({dev.name}) is read-only")
    if dev.mounts:
        raise DeployError(f"{dev.path} ({dev.name}) is mounted or in use: {', '.join(dev.mounts)}; "
                          "unmount it first (--force does not override this)")
    if dev.holders:
        raise DeployError(f"{dev.path} ({dev.name}) is used by {', '.join(dev.holders)} "
                          "(device-mapper or md); --force does not override this")
    if dev.size < image_size:
        raise DeployError(f"{dev.path} ({dev.name}) holds {dev.size} bytes, the image "
                          f"{image_size}: it would be cut short (--force does not override this)")
    if not dev.looks_removable and not force:
        raise DeployError(f"{dev.path} ({dev.name}) is not removable and not on USB (sysfs "
                          "removable=0, no USB bus): refusing to overwrite what may be a "
                          "system disk; --force if you are sure")


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def read_back(device: str | os.PathLike[str], size: int,
              progress: Callable[[str, int, int], None] | None = None) -> str:
    """SHA-256 of the device's first `size` bytes, read past the page cache:
    O_DIRECT (no readahead either), or where the file does not take it
    BLKFLSBUF and POSIX_FADV_DONTNEED, then plain reads."""
    h = hashlib.sha256()
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
        direct = True
    except OSError:
        fd, direct = os.open(device, os.O_RDONLY | os.O_CLOEXEC), False
    buf = mmap.mmap(-1, CHUNK)  # page-aligned, as O_DIRECT wants
    try:
        if not direct:
            with contextlib.suppress(OSError):  # not a block device: the fadvise still drops pages
                fcntl.ioctl(fd, BLKFLSBUF)
            os.posix_fadvise(fd, 0, size, os.POSIX_FADV_DONTNEED)
        done = 0
        while done < size:
            want = min(CHUNK, size - done)
            n = os.preadv(fd, [memoryview(buf)[: -(-want // 4096) * 4096]], done)
            if n < want:
                raise DeployError(f"{device}: read back ended at byte {done + n} of {size}")
            h.update(memoryview(buf)[:want])
            done += want
            if progress:
                progress("verify", done, size)
    finally:
        buf.close()
        os.close(fd)
    return h.hexdigest()


def _invalidate(fd: int, head: int) -> str:
    """Zero the head (no boot sector, no primary GPT); '' or why it failed."""
    try:
        _pwrite_all(fd, bytes(head), 0)
        os.fsync(fd)
        return ""
    except OSError as exc:
        return f" (zeroing its first {head} bytes failed too: {exc.strerror})"


def write_to_device(image: str | os.PathLike[str], device: str | os.PathLike[str], *,
                    force: bool = False, progress: Callable[[str, int, int], None] | None = None,
                    sysfs: Path = Path("/sys"), proc: Path = Path("/proc")) -> DeployResult:
    """Write `image` (an HFT-OS disk image) to the whole block device `device`,
    sync and verify it; see the module's docstring for the order and the
    refusals. progress(phase, done, total) is called with phase "write" and
    "verify"; an exception it raises interrupts the write like Ctrl-C does."""
    img = Path(image)
    try:
        data = img.read_bytes()
    except OSError as exc:
        raise DeployError(f"{img}: cannot read the image ({exc.strerror})") from None
    config = read_image_config(img)  # an HFT-OS image: its config block is there
    dev = inspect_device(device, sysfs=sysfs, proc=proc)
    check_device(dev, len(data), force=force)
    want = hashlib.sha256(data).hexdigest()
    t0 = time.monotonic()
    try:
        fd = os.open(dev.path, os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        raise DeployError(f"{dev.path}: cannot open for writing ({exc.strerror}; EBUSY: "
                          "mounted or held by the kernel)") from None
    head = min(HEAD, len(data))
    done = 0
    try:
        try:
            _pwrite_all(fd, bytes(head), 0)
            os.fsync(fd)
            done = head
            while done < len(data):
                n = min(CHUNK, len(data) - done)
                _pwrite_all(fd, memoryview(data)[done: done + n], done)
                done += n
                if progress:
                    progress("write", done, len(data))
            os.fsync(fd)
            _pwrite_all(fd, memoryview(data)[:head], 0)
            os.fsync(fd)
            got = read_back(dev.path, len(data), progress)
            if got != want:
                raise DeployError(f"{dev.path}: read back sha256 {got[:16]} differs from the "
                                  f"image's {want[:16]}")
        except KeyboardInterrupt as exc:
            why = _invalidate(fd, head)
            exc.add_note(f"hftlab deploy: interrupted at byte {done} of {len(data)}; "
                         f"{dev.path} holds no bootable image (its head is zeroed){why}")
            raise
        except (OSError, HftlabError) as exc:
            why = _invalidate(fd, head)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DeployError(f"writing {img} to {dev.path} failed at byte {done} of {len(data)}: "
                              f"{detail}; the device holds no bootable image (its first {head} "
                              f"bytes are zeroed){why}") from None
    finally:
        os.close(fd)
    return DeployResult(device=dev.path, image=str(img), bytes=len(data), sha256=want,
                        seconds=round(time.monotonic() - t0, 3), verified=True, config=config)


# -- PXE ---------------------------------------------------------------------

def pad_for_ipxe(src: Path, dst: Path) -> str:
    """Copy src to dst (temp name, then rename) padded with zeros (sparse)
    to whole iPXE cylinders; returns dst's sha256."""
    size = src.stat().st_size
    padded = max(CYLINDER, -(-size // CYLINDER) * CYLINDER)
    with AtomicPath(dst) as tmp:
        shutil.copyfile(src, tmp)
        os.truncate(tmp, padded)
        os.chmod(tmp, 0o644)  # a TFTP/HTTP server may read as nobody
    return sha256(dst)


def ipxe_script(http_url: str) -> str:
    """The iPXE script: HTTP SAN boot of the image under http_url (a
    directory URL; iPXE expands ${next-server} to the DHCP server)."""
    return ("#!ipxe\n"
            "# HFT-OS by HTTP SAN boot (written by hftlab deploy pxe): iPXE attaches\n"
            "# the disk image as BIOS drive 0x80 or a UEFI block device and boots it.\n"
            "echo hftlab: sanboot of HFT-OS from " + http_url + "\n"
            f"sanboot {http_url.rstrip('/')}/{PXE_IMAGE}\n")


def write_pxe_tree(dest: str | os.PathLike[str], image: str | os.PathLike[str], *,
                   http_url: str = "http://${next-server}/") -> dict:
    """Write the TFTP/HTTP tree for netbooting `image` into `dest`: hftos.img
    (padded, see pad_for_ipxe), boot.ipxe, iPXE's undionly.kpxe and ipxe.efi
    when Debian's ipxe is installed, and pxe.json (what is where, sha256s,
    the DHCP settings to use). Returns pxe.json's content."""
    d, img = Path(dest), Path(image)
    if not img.is_file():
        raise DeployError(f"{img}: no such image")
    if not http_url.startswith("http://"):
        raise ConfigError(f"http_url {http_url!r}: an http:// URL (iPXE's SAN boot reads over HTTP)")
    config = read_image_config(img)
    d.mkdir(parents=True, exist_ok=True)
    files = {PXE_IMAGE: pad_for_ipxe(img, d / PXE_IMAGE)}
    with AtomicPath(d / IPXE_SCRIPT) as tmp:
        tmp.write_text(ipxe_script(http_url))
        os.chmod(tmp, 0o644)
    files[IPXE_SCRIPT] = sha256(d / IPXE_SCRIPT)
    for name, src in IPXE_CHAIN.items():
        if src.is_file():
            with AtomicPath(d / name) as tmp:
                shutil.copyfile(src, tmp)
                os.chmod(tmp, 0o644)
            files[name] = sha256(d / name)
    manifest = {
        "image": str(img), "image_sha256": sha256(img), "image_bytes": img.stat().st_size,
        "padded_bytes": (d / PXE_IMAGE).stat().st_size, "http_url": http_url,
        "files": files, "config": config,
        "dhcp": {"ipxe_clients (option 175 present)": IPXE_SCRIPT,
                 "bios_pxe (option 93 = 0)": "undionly.kpxe" if "undionly.kpxe" in files else None,
                 "uefi_pxe (option 93 = 7 or 9)": "ipxe.efi" if "ipxe.efi" in files else None},
        "http": f"serve {d} at {http_url} with range requests",
    }
    with AtomicPath(d / "pxe.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o644)
    return manifest


def result_dict(r: DeployResult) -> dict:
    return asdict(r)
