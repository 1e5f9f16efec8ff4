"""The boot media of HFT-OS runs (USB stick, PXE) and the hardware target.

A hardware run (RunSpec target "hw") is a QEMU run with the machine taken
out: the same build, the same per-run config block in the same image copy
(hftos.img in the run directory), the same replayer, order sink, dumpcap,
ready line, dump and golden check, the same run directory. What differs:

    IFACE gets the host address (hftlab.lab.hw.HwLink) -> the image reaches
    the machine: written to the stick (media usb, hftlab.lab.deploy, verified)
    or served by dnsmasq + HTTP on IFACE (media pxe, hftlab.lab.pxe) -> the
    console is opened -> --power-cmd powers the SUT on -> ready on the
    console -> replay -> STOP -> the dump on the console

run.json's "hw" says the interface, console, media, device or PXE service,
the power command and which loader the console showed (hw.booted_by).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from hftlab.experiment import steps
from hftlab.lab import exchange, hw
from hftlab.lab.deploy import result_dict, write_pxe_tree, write_to_device
from hftlab.lab.build import write_image
from hftlab.lab.net import Capture
from hftlab.lab.pxe import HTTP_PORT, PxeServer
from hftlab.lab.vm import BootChoice, choose_boot as vm_choose_boot

__all__ = ["choose_boot", "pxe_server", "execute"]


def choose_boot(spec) -> BootChoice:
    """HFT-OS's boot path for the spec's target and media."""
    if spec.target == "hw":
        return BootChoice("bios", "target hw: the machine's firmware boots the disk image "
                          "(run.json hw.booted_by says what the console showed)")
    if spec.media != "disk" and spec.boot in ("auto", "bios"):
        why = "requested" if spec.boot == "bios" else \
            f"auto chose BIOS: media {spec.media} boots through the firmware, which PVH skips"
        return BootChoice("bios", why)
    return vm_choose_boot(spec.boot)


def pxe_server(spec, run_dir: Path, image: Path, iface: str, host_ip: str, client_ip: str,
               netns: str | None, mac: str | None):
    """For media pxe: the run's PXE tree (run_dir/pxe, the per-run image
    inside) and its server, to be entered; otherwise a context that does nothing."""
    if spec.media != "pxe":
        return contextlib.nullcontext()
    srv = PxeServer(run_dir / "pxe", iface, host_ip, client_ip, netns=netns, mac=mac,
                    logdir=run_dir, http_port=HTTP_PORT)
    write_pxe_tree(run_dir / "pxe", image, http_url=srv.http.url)
    return srv


def execute(spec, run_dir: Path, img: Path, golden, info: dict, say, feed):
    """A run on a machine reached through spec.iface and spec.console."""
    copy = run_dir / img.name
    info["capture"] = {"tool": "dumpcap", "link": f"host NIC {spec.iface}"}
    info["hw"] = {"iface": spec.iface, "console": spec.console, "baud": spec.baud,
                  "mac": spec.mac, "media": spec.media, "device": spec.device}
    with hw.HwLink(spec.iface, mac=spec.mac) as link:
        params = steps.os_params(spec, golden, link.host_ip, link.guest_ip, link.host_mac)
        info["image_sha256"] = write_image(img, copy, params)
        info["network"] = {"mode": "hw", "iface": spec.iface, "host_ip": link.host_ip,
                           "host_mac": link.host_mac, "guest_ip": link.guest_ip,
                           "md_port": params.md_port, "order_port": params.order_port}
        if spec.media == "usb":
            say("deploy", 0.0)
            t_d = time.monotonic()
            res = write_to_device(copy, spec.device, force=spec.force)
            info["hw"]["deploy"] = {k: v for k, v in result_dict(res).items() if k != "config"}
            info["phases_s"]["deploy"] = round(time.monotonic() - t_d, 3)
        pxe = pxe_server(spec, run_dir, copy, spec.iface, link.host_ip, link.guest_ip, None, spec.mac)
        tx = exchange.udp_socket(None, link.host_ip, 0)
        rx = exchange.udp_socket(None, link.host_ip, params.order_port)
        ctl = lambda: tx.sendto(exchange.control_message(1, params.ctl_key),  # noqa: E731
                                (link.guest_ip, params.ctl_port))
        try:
            with pxe, Capture(link, run_dir / "wire.pcapng") as cap, \
                    hw.SerialConsole(spec.console, run_dir / "serial.log", spec.baud) as con:
                say("power", 0.0)
                info["hw"]["power"] = hw.power_on(spec.power_cmd)
                con.started_at = time.monotonic()  # ready counts from power-on
                t_q = time.monotonic()
                status, sink, rep = steps.trade(spec, con, feed, tx, rx, (link.guest_ip, params.md_port),
                                                ctl, golden, info, say, capture=cap)
                info["phases_s"]["sut_total"] = round(time.monotonic() - t_q, 3)
            if spec.media == "pxe":
                info["pxe"] = pxe.summary()
        finally:
            tx.close()
            rx.close()
        info["hw"]["booted_by"] = hw.booted_by((run_dir / "serial.log").read_bytes())
    return steps.collect(spec, run_dir, status, sink.payloads(), sink.rx_ns, rep, feed, golden, info)
