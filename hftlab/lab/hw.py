"""hftlab.lab.hw: a system under test that is a machine, not a QEMU process.

hftlab reaches the machine through two things it is given by name:

* IFACE, a host NIC cabled to the SUT's NIC (:class:`HwLink`): hftlab puts
  the run's host address on it (and, with the SUT's MAC, a permanent
  neighbour entry), and the replayer, the order sink, dumpcap and, for a
  PXE boot, dnsmasq and the HTTP server all use it; teardown removes what
  it added;
* TTY, the SUT's serial console (:class:`SerialConsole`): raw mode at the
  given baud rate, every byte appended to the run's serial.log by a reader
  thread, so the ready line and the end-of-run dump are read exactly as a
  QEMU run's. A machine has no isa-debug-exit: the run's end is read from
  the console (the dump's END line: "ok"; "exit code 0x.." / panic / CPU
  exception lines: that code) and given as the status QEMU would have
  returned (hftlab.lab.vm.debug_exit_status), so a hardware run is judged
  by the same rule.

:func:`power_on` runs the lab's command that powers on or resets the SUT
(IPMI, a switched PDU, a USB mux then a reset): hftlab opens the console
first, so nothing the SUT prints is lost.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import termios
import threading
import time
from pathlib import Path

from hftlab.errors import ConfigError, RunError
from hftlab.lab.net import ip
from hftlab.lab.vm import ConsoleProcess, debug_exit_status

__all__ = ["SerialConsole", "HwLink", "power_on", "console_status", "booted_by", "BAUDS"]

BAUDS = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400,
         57600: termios.B57600, 115200: termios.B115200}
EXIT_OK, EXIT_PANIC, EXIT_CRASHED = 0x10, 0x11, 0x12  # kernel_src/runtime/exit_codes.h
_DUMP_END = re.compile(rb"@@HFTDUMP END records=\d+ crc32=[0-9a-f]{8}\n")
_EXIT = re.compile(rb"exit code (?:crashed \()?0x([0-9a-f]+)")


def console_status(text: bytes) -> int | None:
    """The exit status QEMU would have given for console output `text`, or
    None while the SUT still runs."""
    m = _EXIT.search(text)
    if m:
        return debug_exit_status(int(m.group(1), 16))
    if b"\npanic: " in text or b"*** panic" in text:
        return debug_exit_status(EXIT_PANIC)
    if _DUMP_END.search(text):  # the trading run ends with its dump, then halts
        return debug_exit_status(EXIT_OK)
    return None


def booted_by(text: bytes) -> str:
    """Which of HFT-OS's entries the console shows."""
    if b"hftos stage2" in text:
        return "bios (stage 1/2 from the boot drive)"
    if b"hftos pvh" in text:
        return "pvh"
    if b"hftos uefi" in text:  # BOOTX64.EFI's banner (kernel_src/boot/uefi)
        return "uefi (BOOTX64.EFI from the ESP)"
    return "unknown (no loader banner on the console)"


class SerialConsole(ConsoleProcess):
    """The SUT's serial console at `tty`, logged to serial_path."""

    what = "the SUT (serial console)"

    def __init__(self, tty: str | os.PathLike[str], serial_path: Path, baud: int = 115200) -> None:
        if baud not in BAUDS:
            raise ConfigError(f"baud {baud}: one of {', '.join(map(str, BAUDS))}")
        self.tty, self.serial_path, self.baud = os.fspath(tty), Path(serial_path), baud
        self.fd = -1
        self.returncode: int | None = None
        self.started_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> "SerialConsole":
        try:
            self.fd = os.open(self.tty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise RunError(f"console {self.tty}: cannot open ({exc.strerror})") from None
        try:
            attr = termios.tcgetattr(self.fd)
        except termios.error as exc:
            os.close(self.fd)
            raise RunError(f"console {self.tty}: not a terminal ({exc})") from None
        # raw 8N1, no flow control, at the baud rate (cfmakeraw's flags)
        attr[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                     | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF)
        attr[1] &= ~termios.OPOST
        attr[2] = (attr[2] & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | termios.CRTSCTS)) \
            | termios.CS8 | termios.CREAD | termios.CLOCAL
        attr[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        attr[4] = attr[5] = BAUDS[self.baud]
        termios.tcsetattr(self.fd, termios.TCSANOW, attr)
        termios.tcflush(self.fd, termios.TCIFLUSH)  # nothing of an earlier boot
        self.serial_path.parent.mkdir(parents=True, exist_ok=True)
        self.serial_path.write_bytes(b"")
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._read, name="hftlab-console", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        import select

        with open(self.serial_path, "ab", buffering=0) as out:
            while not self._stop.is_set():
                r, _, _ = select.select([self.fd], [], [], 0.05)
                if not r:
                    continue
                try:
                    data = os.read(self.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: a pty whose other side closed (the stand-in ended)
                    time.sleep(0.05)
                    continue
                if data:
                    out.write(data)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = console_status(self.serial_path.read_bytes())
        return self.returncode

    def wait(self, timeout: float) -> int:
        """Wait until the console shows the run's end; RunError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise RunError(f"{self.what} showed no end of run (dump, exit code, panic) within "
                               f"{timeout:.0f} s:\n{self.output_tail()}")
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def pin(self) -> list[int]:
        return []  # no vCPU thread: the SUT has a machine of its own

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "SerialConsole":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


class HwLink:
    """IFACE with the run's host address: host_ip, the SUT guest_ip."""

    netns = None  # the interface is used where it is (hftlab.lab.net.Capture reads these)

    def __init__(self, iface: str, subnet: str = "10.201.0.0/24", mac: str | None = None) -> None:
        net = ipaddress.ip_network(subnet)
        self.iface, self.tap, self.prefix = iface, iface, net.prefixlen
        self.host_ip, self.guest_ip = str(net.network_address + 1), str(net.network_address + 2)
        self.mac = mac
        self.host_mac = ""
        self._added: list[list[str]] = []  # `ip` commands that undo what up() did

    def exec_prefix(self) -> list[str]:
        return []

    def up(self) -> "HwLink":
        if os.geteuid() != 0:
            raise RunError("a hardware run configures IFACE and captures on it: it needs root")
        p = ip("-j", "addr", "show", "dev", self.iface, check=False)
        if p.returncode != 0:
            raise RunError(f"iface {self.iface}: no such interface here ({p.stderr.strip()})")
        link = json.loads(p.stdout)[0]
        self.host_mac = link["address"]
        have = {(a["local"], a["prefixlen"]) for a in link.get("addr_info", []) if a["family"] == "inet"}
        try:
            ip("link", "set", self.iface, "up")
            if (self.host_ip, self.prefix) not in have:
                ip("addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.iface)
                self._added.append(["addr", "del", f"{self.host_ip}/{self.prefix}", "dev", self.iface])
            if self.mac:  # no ARP wait, and a MAC that is not the SUT's gets nothing
                ip("neigh", "replace", self.guest_ip, "lladdr", self.mac, "nud", "permanent",
                   "dev", self.iface)
                self._added.append(["neigh", "del", self.guest_ip, "dev", self.iface])
        except RunError:
            self.down()
            raise
        return self

    def down(self) -> None:
        for cmd in reversed(self._added):
            ip(*cmd, check=False)
        self._added = []

    def __enter__(self) -> "HwLink":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def power_on(cmd: str | None, timeout: float = 120.0) -> dict:
    """Run the lab's power-on/reset command (a shell command line); None:
    nothing to run, the operator powers the SUT on. Returns what ran."""
    if not cmd:
        return {"power_cmd": None, "note": "no --power-cmd: the SUT was to be powered on by hand"}
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"--power-cmd did not finish within {timeout:.0f} s: {cmd}") from None
    if p.returncode != 0:
        raise RunError(f"--power-cmd exited with status {p.returncode}: {cmd}\n"
                       f"{(p.stdout + p.stderr).strip()[-500:]}")
    return {"power_cmd": cmd, "status": p.returncode}
