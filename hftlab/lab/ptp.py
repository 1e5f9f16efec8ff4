"""hftlab.lab.ptp: HFT-OS's NIC time-stamp test mode (HFTOS_F_PTP_TEST,
kernel_src/runtime/ptp_test.c), from the host side.

* :func:`ptp_test_image` writes a run image with the flag set.
* :func:`parse_ptp_log` turns the test's console lines ("PTP RX ...",
  "PTP TX ...") into dicts of ints (and the frame kind).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hftlab.errors import BuildError
from hftlab.lab.build import OsParams, read_image_config, write_image
from hftlab.util.paths import ROOT

__all__ = ["ptp_test_image", "parse_ptp_log", "ptp_message"]

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
