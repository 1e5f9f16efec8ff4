"""hftlab.capture: pcap and pcapng captures into Arrow tables.

    cap = hftlab.capture.read("wire.pcapng")
    cap.packets      # one row per packet (PACKET_SCHEMA)
    cap.itch         # ITCH 5.0 messages found in MoldUDP64 packets, by packet_index
    cap.ouch         # OUCH 4.2 Enter Orders found in UDP packets, by packet_index
    cap.ptp          # PTPv2 messages (Ethernet 0x88F7, UDP 319/320)
    cap.metadata     # file, format, sections, interfaces, timestamp resolutions
    ptp_offsets(cap.ptp).sync   # offset from master / mean path delay series

Streaming with bounded memory: ``for batch in iter_batches(path): ...``.
Times are exact int64 ns since the Unix epoch; addresses are fixed-size
binary (IPv4 as IPv4-mapped IPv6, see `format_ip`). Malformed files raise
`hftlab.errors.DataError` naming the file, byte offset and block; pass
``partial=True`` to get the packets before the bad block (``Capture.error``).

``import hftlab.capture`` is cheap: each name loads its module (and numba,
numpy, pyarrow, polars as that module needs) on first use, so a CLI that
only parses its arguments does not pay for the decoders.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: public name -> the module defining it (loaded on first access)
_LAZY = {
    "DECODED_LINKTYPES": "_decode",
    "ITCH_SCHEMA": "_payload",
    "OUCH_SCHEMA": "_payload",
    "PtpSeries": "_ptp",
    "ptp_offsets": "_ptp",
    "Capture": "_reader",
    "CaptureBatch": "_reader",
    "CaptureReader": "_reader",
    "ParquetSet": "_reader",
    "iter_batches": "_reader",
    "mold_datagrams": "_reader",
    "read": "_reader",
    "PACKET_SCHEMA": "_table",
    "PTP_NAMES": "_table",
    "PTP_SCHEMA": "_table",
    "format_ip": "_table",
    "format_mac": "_table",
    "TRAILER_KINDS": "_trailers",
    "TRAILER_MODES": "_trailers",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hftlab.capture._decode import DECODED_LINKTYPES
    from hftlab.capture._payload import ITCH_SCHEMA, OUCH_SCHEMA
    from hftlab.capture._ptp import PtpSeries, ptp_offsets
    from hftlab.capture._reader import (Capture, CaptureBatch, CaptureReader, ParquetSet, iter_batches,
                                        mold_datagrams, read)
    from hftlab.capture._table import PACKET_SCHEMA, PTP_NAMES, PTP_SCHEMA, format_ip, format_mac
    from hftlab.capture._trailers import TRAILER_KINDS, TRAILER_MODES


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'hftlab.capture' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hftlab.capture.{mod}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
