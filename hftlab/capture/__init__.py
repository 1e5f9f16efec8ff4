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
"""
from hftlab.capture._decode import DECODED_LINKTYPES
from hftlab.capture._payload import ITCH_SCHEMA, OUCH_SCHEMA
from hftlab.capture._ptp import PtpSeries, ptp_offsets
from hftlab.capture._reader import Capture, CaptureBatch, CaptureReader, ParquetSet, iter_batches, read
from hftlab.capture._table import PACKET_SCHEMA, PTP_NAMES, PTP_SCHEMA, format_ip, format_mac
from hftlab.capture._trailers import TRAILER_KINDS, TRAILER_MODES

__all__ = [
    "Capture",
    "CaptureBatch",
    "CaptureReader",
    "DECODED_LINKTYPES",
    "ITCH_SCHEMA",
    "OUCH_SCHEMA",
    "PACKET_SCHEMA",
    "PTP_NAMES",
    "PTP_SCHEMA",
    "ParquetSet",
    "PtpSeries",
    "TRAILER_KINDS",
    "TRAILER_MODES",
    "format_ip",
    "format_mac",
    "iter_batches",
    "ptp_offsets",
    "read",
]
