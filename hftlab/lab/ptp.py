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

__all__ = ["ptp_test_image", "parse_ptp_log"]

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
