"""hftlab.lab.media: how HFT-OS's image reaches a QEMU machine.

* ``disk``: an IDE disk (BIOS) or ``-kernel`` (PVH), hftlab.lab.vm.boot_media;
* ``usb``: the same image as a USB stick, ``usb-storage`` on a ``qemu-xhci``
  controller, first in the boot order; the firmware reads it through its
  xHCI driver (SeaBIOS: int 13h drive 0x80, so stage 1/2 see a hard disk);
* ``pxe``: no disk at all; the NIC carries Debian's iPXE option ROM
  (ipxe-qemu), which netboots from hftlab.lab.pxe's dnsmasq and HTTP
  (iPXE's HTTP SAN boot of the same image).

:class:`MediaVmSpec` is a VmSpec whose command line says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hftlab.errors import ConfigError
from hftlab.lab.vm import BootChoice, VmSpec, boot_media

__all__ = ["MEDIA", "IPXE_ROM_DIR", "ipxe_rom", "MediaVmSpec", "vm_spec"]

MEDIA = ("disk", "usb", "pxe")
IPXE_ROM_DIR = Path("/usr/lib/ipxe/qemu")
#: hftlab's NIC -> the ipxe-qemu ROM's name (pxe-*.rom: BIOS; efi-*.rom: BIOS and UEFI)
_ROM_NAMES = {"e1000": "e1000", "virtio": "virtio"}


def ipxe_rom(nic: str, firmware: str = "bios", rom_dir: Path = IPXE_ROM_DIR) -> Path:
    """The iPXE option ROM QEMU gives the NIC for a PXE boot."""
    if nic not in _ROM_NAMES:
        raise ConfigError(f"media pxe on nic {nic!r}: Debian's ipxe-qemu has ROMs for "
                          f"{', '.join(_ROM_NAMES)} only (no igb/82576 ROM)")
    rom = rom_dir / f"{'efi' if firmware == 'uefi' else 'pxe'}-{_ROM_NAMES[nic]}.rom"
    if not rom.is_file():
        raise ConfigError(f"media pxe needs iPXE's ROM {rom} (apt-get install ipxe-qemu)")
    return rom


@dataclass
class MediaVmSpec(VmSpec):
    """A VmSpec booting HFT-OS from a USB stick image or by PXE."""

    media: str = "disk"
    stick: Path | None = None  #: usb: the image (or block device) behind usb-storage
    rom: Path | None = None  #: pxe: the NIC's option ROM

    def _kernel_args(self) -> list[str]:
        return [] if self.media != "disk" else super()._kernel_args()

    def command(self) -> list[str]:
        cmd = super().command()
        if self.media == "usb":
            cmd += ["-drive", f"if=none,id=stick,format=raw,file={self.stick}",
                    "-device", "qemu-xhci,id=xhci",
                    "-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=1"]
        elif self.media == "pxe":
            nic = [i for i, a in enumerate(cmd) if a.startswith(("e1000,", "virtio-net-pci,"))
                   and "netdev=n0" in a]
            if len(nic) != 1:
                raise ConfigError("media pxe: the VM has no NIC to netboot from")
            # VmSpec gives the NIC an empty romfile (no ROM); here it is iPXE, first to boot
            cmd[nic[0]] = re.sub(r"romfile=(?=,|$)", f"romfile={self.rom},bootindex=1", cmd[nic[0]])
        return cmd


def vm_spec(media: str, boot: BootChoice, os_file: Path, **kw) -> VmSpec:
    """The VmSpec booting os_file (a per-run image copy) through `media`."""
    if media not in MEDIA:
        raise ConfigError(f"media {media!r}: one of {', '.join(MEDIA)}")
    if media == "disk":
        return VmSpec(**boot_media(boot, os_file), **kw)
    if boot.name == "pvh":
        raise ConfigError(f"media {media}: PVH has no firmware to boot a stick or a NIC (boot bios)")
    # uefi: OVMF on q35 as for a disk (VmSpec.uefi), the stick or the NIC's
    # iPXE (efi-*.rom) first in its boot order
    fw = {"uefi": (boot.firmware, boot.vars_template)} if boot.name == "uefi" else {}
    if media == "usb":
        return MediaVmSpec(image=None, media="usb", stick=os_file, **fw, **kw)
    return MediaVmSpec(image=None, media="pxe", rom=ipxe_rom(kw.get("nic") or "e1000", boot.name),
                       **fw, **kw)
