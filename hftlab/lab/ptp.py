"""hftlab.lab.ptp: PTP from the host side.

* :class:`Ptp4l`: linuxptp's ptp4l as the master of a run, on the host side
  of the run's tap in the run's network namespace, software time stamps,
  started and stopped with the run (its log: ptp4l.log in the run directory).
* :func:`parse_ptp_series`: the slave's series from HFT-OS's console (the
  framed ``@@HFTPTP`` block after the tslog dump, kernel_src/core/ptp.h) as
  an Arrow table with the capture reader's PTP column names
  (hftlab.capture._ptp: ts_ns, domain, seq_id, two_step, t1_ns, t2_ns,
  correction_ns, mean_path_delay_ns, offset_ns) and the servo's own
  (tsc, freq_ppb, servo_state, outlier, step).
* :func:`ptp_summary`: convergence and offset quantiles of such a series.
* :func:`ptp_message`: PTPv2 messages for tests and hostile runs.
* HFT-OS's NIC time-stamp test mode (HFTOS_F_PTP_TEST,
  kernel_src/runtime/ptp_test.c): :func:`ptp_test_image` writes a run image
  with the flag set, :func:`parse_ptp_log` turns the test's console lines
  ("PTP RX ...", "PTP TX ...") into dicts of ints (and the frame kind).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from hftlab.errors import BuildError, RunError, ToolMissingError
from hftlab.lab.build import OsParams, read_image_config, write_image
from hftlab.util.paths import ROOT
from hftlab.util.proc import spawn, stop_group

__all__ = ["ptp_test_image", "parse_ptp_log", "ptp_message", "Ptp4l", "parse_ptp_series",
           "ptp_summary", "SERVO_STATES", "hostile_ptp_frames"]

_ABI = ROOT / "kernel_src" / "include" / "hftos_abi.h"


def _abi_value(name: str) -> int:
    """A numeric #define of hftos_abi.h (the one definition of the flags)."""
    m = re.search(rf"^#define\s+{name}\s+(0x[0-9A-Fa-f]+|\d+)\b", _ABI.read_text(), re.M)
    if not m:
        raise BuildError(f"{_ABI}: no numeric #define {name}")
    return int(m.group(1), 0)


def ptp_test_image(src: Path, dst: Path, params: OsParams) -> str:
    """Copy `src` to `dst` with `params` and HFTOS_F_PTP_TEST set in the
    config's flags; returns dst's sha256 like write_image."""
    write_image(src, dst, params)
    at = read_image_config(dst)["offset"] + _abi_value("HFTOS_CONFIG_OFF_FLAGS")
    buf = bytearray(dst.read_bytes())
    flags = int.from_bytes(buf[at: at + 4], "little") | _abi_value("HFTOS_F_PTP_TEST")
    buf[at: at + 4] = flags.to_bytes(4, "little")
    dst.write_bytes(buf)
    return hashlib.sha256(buf).hexdigest()


_LINE = re.compile(r"^PTP (RX|TX) (.*)$")


def parse_ptp_log(text: str) -> tuple[list[dict], list[dict]]:
    """The RX and TX lines of a PTP test console, in order, as dicts
    (numbers as int, kind as str)."""
    rx, tx = [], []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        rec = {}
        for field in m.group(2).split():
            k, _, v = field.partition("=")
            rec[k] = v if k == "kind" else int(v)
        (rx if m.group(1) == "RX" else tx).append(rec)
    return rx, tx


# --- PTPv2 messages (IEEE 1588-2008 clause 13), for tests and hostile runs ---

PTP_SYNC, PTP_DELAY_REQ, PTP_FOLLOW_UP, PTP_DELAY_RESP, PTP_ANNOUNCE = 0x0, 0x1, 0x8, 0x9, 0xB
_LEN = {PTP_SYNC: 44, PTP_DELAY_REQ: 44, PTP_FOLLOW_UP: 44, PTP_DELAY_RESP: 54, PTP_ANNOUNCE: 64}


def _ts(ns: int) -> bytes:
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return sec.to_bytes(6, "big") + nsec.to_bytes(4, "big")


def ptp_message(msg_type: int, *, seq: int, clock_id: bytes, port: int = 1, domain: int = 0,
                ts_ns: int = 0, correction_ns: float = 0.0, two_step: bool = False,
                log_interval: int = 0, version: int = 2, requesting: bytes | None = None,
                ds: bytes | None = None, length: int | None = None) -> bytes:
    """One PTP message (no transport). `ds` is an Announce's 16 bytes from
    grandmasterPriority1 to stepsRemoved (default: priority 128, class 248,
    accuracy 0xFE, variance 0xFFFF, priority2 128, grandmaster = clock_id,
    stepsRemoved 0); `requesting` a Delay_Resp's requestingPortIdentity;
    `length` overrides messageLength (hostile messages)."""
    n = _LEN.get(msg_type, 34)
    body = bytearray(n)
    body[0] = msg_type & 0xF
    body[1] = version & 0xF
    body[2:4] = (n if length is None else length).to_bytes(2, "big")
    body[4] = domain
    body[6] = 0x02 if two_step else 0
    body[8:16] = int(round(correction_ns * 65536)).to_bytes(8, "big", signed=True)
    body[20:28] = clock_id
    body[28:30] = port.to_bytes(2, "big")
    body[30:32] = (seq & 0xFFFF).to_bytes(2, "big")
    body[32] = {PTP_SYNC: 0, PTP_DELAY_REQ: 1, PTP_FOLLOW_UP: 2, PTP_DELAY_RESP: 3}.get(msg_type, 5)
    body[33] = log_interval & 0xFF
    if msg_type in (PTP_SYNC, PTP_DELAY_REQ, PTP_FOLLOW_UP, PTP_DELAY_RESP, PTP_ANNOUNCE):
        body[34:44] = _ts(ts_ns)
    if msg_type == PTP_DELAY_RESP:
        body[44:54] = requesting or bytes(10)
    if msg_type == PTP_ANNOUNCE:
        body[44:46] = (37).to_bytes(2, "big")
        body[47:63] = ds or (bytes([128, 248, 0xFE, 0xFF, 0xFF, 128]) + clock_id + bytes(2))
        body[63] = 0xA0
    return bytes(body)


# --- ptp4l as the run's master ----------------------------------------------

#: The master's message rates: Sync 2^-log_sync /s (default 8/s), Announce
#: 1/s, Delay_Req up to 8/s. Faster than ptp4l's defaults (1/s, 1 per 2 s) so a
#: run locks in seconds; the slave follows whatever the master announces.
PTP4L_CONFIG = """[global]
domainNumber {domain}
priority1 128
masterOnly 1
twoStepFlag 1
logSyncInterval {log_sync}
logAnnounceInterval 0
announceReceiptTimeout 3
logMinDelayReqInterval -3
delay_mechanism E2E
network_transport {transport}
time_stamping software
tx_timestamp_timeout 100
summary_interval 0
"""


class Ptp4l:
    """ptp4l -i TAP in the run's namespace, master only; stopped (SIGTERM,
    then SIGKILL) when the context ends, on every path. `transport` "l2"
    (Ethernet 0x88F7, the one igb stamps in hardware) or "udp" (UDPv4
    224.0.1.129:319/320)."""

    def __init__(self, network, run_dir: Path, *, domain: int = 0, transport: str = "l2",
                 log_sync: int = -3) -> None:
        if transport not in ("l2", "udp"):
            raise RunError(f"ptp transport {transport!r}: l2 or udp")
        if not 0 <= domain <= 127:
            raise RunError(f"ptp domain {domain}: 0..127")
        self.network, self.run_dir = network, Path(run_dir)
        self.domain, self.transport, self.log_sync = domain, transport, log_sync
        self.proc: subprocess.Popen | None = None
        self.log_path = self.run_dir / "ptp4l.log"
        self.conf_path = self.run_dir / "ptp4l.conf"

    def spawn(self) -> "Ptp4l":
        """Start ptp4l (in its own session, killed with hftlab) without
        waiting for it to become master."""
        exe = shutil.which("ptp4l") or ("/usr/sbin/ptp4l" if os.path.exists("/usr/sbin/ptp4l") else None)
        if not exe:
            raise ToolMissingError("ptp4l", "apt-get install linuxptp")
        self.conf_path.write_text(PTP4L_CONFIG.format(
            domain=self.domain, transport="L2" if self.transport == "l2" else "UDPv4",
            log_sync=self.log_sync))
        cmd = [*self.network.exec_prefix(), exe, "-f", str(self.conf_path), "-i", self.network.tap,
               "-m", "-l", "6"]
        self._log = open(self.log_path, "wb")
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def start(self, timeout: float = 10.0) -> "Ptp4l":
        """spawn(), then wait until ptp4l says it is master; RunError with
        its log's tail (and no process left) when it exits or does not
        within timeout s."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # "port 1: ... to MASTER" once it sends
            text = self.log_path.read_text(errors="replace")
            if "MASTER on" in text or "to MASTER" in text:
                return self
            if self.proc.poll() is not None:
                self.stop()
                raise RunError(f"ptp4l exited with {self.proc.returncode}: {text.strip()[-800:]}")
            time.sleep(0.05)
        self.stop()
        raise RunError(f"ptp4l did not become master within {timeout:.0f} s; its log: {self.log_path}")

    def clock_id(self) -> bytes | None:
        """ptp4l's clockIdentity, from its log ("selected local clock
        aabbcc.fffe.ddeeff as best master"), or None before it said so."""
        m = re.search(r"selected local clock ([0-9a-f]{6})\.([0-9a-f]{4})\.([0-9a-f]{6})",
                      self.log_path.read_text(errors="replace"))
        return bytes.fromhex("".join(m.groups())) if m else None

    def stop(self, timeout: float = 5.0) -> None:
        stop_group(self.proc, signal.SIGTERM, timeout)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Ptp4l":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


PTP_L2_MCAST = bytes.fromhex("011b19000000")


def hostile_ptp_frames(host_mac: str, master: bytes, domain: int = 0) -> list[tuple[str, bytes]]:
    """PTP-over-Ethernet frames a slave must count and survive, each with the
    counter it lands in: another domain, PTP version 1, a messageLength
    shorter than a Sync, one longer than the frame, and a Follow_Up of the
    selected master (`master`: its clockIdentity) for a Sync never sent."""
    src = bytes(int(x, 16) for x in host_mac.split(":"))

    def eth(msg: bytes) -> bytes:
        return PTP_L2_MCAST + src + (0x88F7).to_bytes(2, "big") + msg

    return [
        ("ptp_wrong_domain", eth(ptp_message(PTP_SYNC, seq=1, clock_id=master, domain=(domain + 1) & 0x7F))),
        ("ptp_wrong_version", eth(ptp_message(PTP_SYNC, seq=2, clock_id=master, domain=domain, version=1))),
        ("ptp_truncated", eth(ptp_message(PTP_SYNC, seq=3, clock_id=master, domain=domain, length=30))),
        ("ptp_oversized", eth(ptp_message(PTP_SYNC, seq=4, clock_id=master, domain=domain, length=4000))),
        ("ptp_seq_mismatch", eth(ptp_message(PTP_FOLLOW_UP, seq=0xBEEF, clock_id=master, domain=domain,
                                             ts_ns=1))),
    ]


# --- the slave's series --------------------------------------------------------

#: enum ptp_state (kernel_src/core/ptp.h)
SERVO_STATES = ("listening", "uncalibrated", "locked", "holdover")
_SAMPLE = np.dtype([("tsc", "<u8"), ("t1_ns", "<i8"), ("t2_ns", "<i8"), ("correction_ns", "<i8"),
                    ("offset_ns", "<i8"), ("mean_path_delay_ns", "<i8"), ("freq_ppb_scaled", "<i8"),
                    ("seq_id", "<u2"), ("state", "u1"), ("flags", "u1"), ("pad", "<u4")])
assert _SAMPLE.itemsize == 64
_BEGIN = b"@@HFTPTP 1 BEGIN\n"
_END = re.compile(rb"@@HFTPTP END samples=(\d+) total=(\d+) crc32=([0-9a-f]{8})\n")


def parse_ptp_series(serial: bytes, *, domain: int = 0, source: str = "serial") -> pa.Table:
    """The @@HFTPTP block of a console log as a table, one row per Sync the
    slave used; RunError naming `source` when the block is missing, cut or
    its CRC does not match."""
    at = serial.rfind(_BEGIN)
    if at < 0:
        raise RunError(f"{source}: no @@HFTPTP block (was the run started with --ptp?)")
    body_at = at + len(_BEGIN)
    m = _END.search(serial, body_at)
    if not m:
        raise RunError(f"{source}: the @@HFTPTP block at byte {at} has no end line (cut off?)")
    body = serial[body_at: m.start()]
    crc = zlib.crc32(body) & 0xFFFFFFFF
    if crc != int(m.group(3), 16):
        raise RunError(f"{source}: @@HFTPTP CRC {crc:08x}, block says {m.group(3).decode()}")
    lines = body.split(b"\n")[:-1] if body else []
    if len(lines) != int(m.group(1)):
        raise RunError(f"{source}: @@HFTPTP has {len(lines)} lines, its end says {m.group(1).decode()}")
    for i, ln in enumerate(lines):
        if not ln.startswith(b"S ") or len(ln) != 2 + 128:
            raise RunError(f"{source}: @@HFTPTP line {i + 1} is not 'S <128 hex digits>'")
    raw = b"".join(bytes.fromhex(ln[2:].decode()) for ln in lines)
    a = np.frombuffer(raw, _SAMPLE)
    mpd = a["mean_path_delay_ns"]
    valid = mpd >= 0
    return pa.table({
        "ts_ns": pa.array(a["t2_ns"]),
        "domain": pa.array(np.full(len(a), domain, np.uint8)),
        "seq_id": pa.array(a["seq_id"]),
        "two_step": pa.array((a["flags"] & 1) != 0),
        "t1_ns": pa.array(a["t1_ns"]),
        "t2_ns": pa.array(a["t2_ns"]),
        "correction_ns": pa.array(a["correction_ns"]),
        "mean_path_delay_ns": pa.array(mpd, mask=~valid),
        "offset_ns": pa.array(a["offset_ns"], mask=~valid),
        "tsc": pa.array(a["tsc"]),
        "freq_ppb": pa.array(a["freq_ppb_scaled"] / 65536.0),
        "servo_state": pa.array([SERVO_STATES[s] if s < 4 else str(s) for s in a["state"]]),
        "outlier": pa.array((a["flags"] & 2) != 0),
        "step": pa.array((a["flags"] & 4) != 0),
    })


def ptp_summary(series: pa.Table, tsc_hz: int, *, bound_ns: int = 10_000,
                window_s: float = 60.0) -> dict:
    """Convergence and accuracy of a slave series: the time from the first
    Sync to the first locked sample with |offset| below bound_ns (lock_s),
    to the sample from which it stays below (stays_s), and the |offset|
    p50/p99/max over window_s seconds after lock_s (or what there is:
    window_s says how much)."""
    tsc = series.column("tsc").to_numpy()
    off = series.column("offset_ns").to_numpy(zero_copy_only=False)
    state = series.column("servo_state").to_pylist()
    out = {"samples": len(tsc), "bound_ns": bound_ns, "lock_s": None, "window_s": 0.0,
           "offset_abs_p50_ns": None, "offset_abs_p99_ns": None, "offset_abs_max_ns": None,
           "stays_s": None, "final_state": state[-1] if state else None}
    if not len(tsc):
        return out
    ok = np.array([s == "locked" for s in state]) & ~np.isnan(off.astype(float)) & \
        (np.abs(np.nan_to_num(off.astype(float), nan=np.inf)) < bound_ns)
    good = np.nonzero(ok)[0]
    if not len(good):
        return out
    first = good[0]
    bad = np.nonzero(~ok)[0]
    stays = 0 if not len(bad) else bad[-1] + 1
    out["lock_s"] = round(float(tsc[first] - tsc[0]) / tsc_hz, 3)
    if stays < len(tsc):
        out["stays_s"] = round(float(tsc[stays] - tsc[0]) / tsc_hz, 3)
    end = tsc[first] + int(window_s * tsc_hz)
    w = np.abs(off[first:][tsc[first:] <= end].astype(float))
    out["window_s"] = round(float(tsc[first:][tsc[first:] <= end][-1] - tsc[first]) / tsc_hz, 3)
    out["offset_abs_p50_ns"] = float(np.percentile(w, 50))
    out["offset_abs_p99_ns"] = float(np.percentile(w, 99))
    out["offset_abs_max_ns"] = float(w.max())
    return out
