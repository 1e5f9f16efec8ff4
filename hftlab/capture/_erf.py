"""Endace ERF (Extensible Record Format): detection and the record scanner.

An ERF file is a bare sequence of records, with no file header and no magic
number. Each record starts with a 16-byte header::

    timestamp (8, little-endian) | type (1) | flags (1) | rlen (2, BE)
    | lctr or colour (2, BE) | wlen (2, BE)

* timestamp: 32.32 fixed point, seconds since 1970 in the high 32 bits and a
  binary fraction of a second in the low 32 (a unit of 2^-32 s, ~233 ps).
  Converted to int64 ns with integer arithmetic only:
  ``sec * 10^9 + ((frac * 10^9 + 2^31) >> 32)``, i.e. the fraction rounded
  to the nearest nanosecond, halves up (the carry into the next second is
  the plain addition). This is how Wireshark's reader rounds, so the values
  equal tshark's frame.time_epoch. The largest value, 2^32 s, is 4.3e18 ns:
  every ERF timestamp fits int64 ns, none needs a ts_error.
* type: record type in the low 7 bits; bit 0x80 says extension headers
  follow the 16-byte header. Each extension header is 8 bytes whose first
  byte's top bit says another one follows.
* flags: capture interface in bits 0-1, with bit 6 as its high bit on newer
  cards (``(flags & 3) | ((flags & 0x40) >> 4)``, 0-7; Wireshark 4.0 shows
  bit 6 as reserved and numbers ports A-D from bits 0-1), 0x04 varying
  length record, 0x08 truncated (the card dropped data), 0x10 RX error,
  0x20 DS error, 0x80 reserved.
* rlen: the whole record's length, header included (>= 16); records of
  fixed length (vlen clear) or aligned to 8 bytes carry padding past the
  captured frame, so the captured length is ``min(wlen, data bytes)``.
* lctr: loss counter (records lost between this one and the previous on the
  card) for most types; the colour / hash for the COLOR_* types (11, 16,
  20). Kept raw in `lctr`, with the record type beside it.
* wlen: the frame's length on the wire; for Ethernet this includes the
  4-byte FCS, which ERF Ethernet records carry (Wireshark synthesises one
  when it converts a pcap to ERF).

Ethernet types (ETH 2, COLOR_ETH 11, DSM_COLOR_ETH 16, COLOR_HASH_ETH 20)
put a 2-byte pad (offset, reserved) between the extension headers and the
frame; the frame is indexed as linktype 1 (Ethernet). IPV4 (22) and IPV6
(23) records carry a bare IP packet (linktype 228 / 229). Every other type
(HDLC, ATM, AAL, InfiniBand, META provenance 27, PAD 48, ...) is skipped
and counted per type in `skipped`; hftlab decodes none of them.

Detection (`parse_erf_header`): ERF has no magic, so the first record must
be whole and well formed (rlen >= 16 and inside the file, a known type other
than 0 (legacy), the reserved flag bit clear, extension headers and the
Ethernet pad inside rlen, a non-zero time unless META or PAD), and the
next records in the file's first 64 KiB must keep Wireshark's timestamp
heuristics (never back by more than a second, never ahead by more than a
year). A malformed later record does not make the file "not ERF": the
scanner refuses it at its offset (`erf_error`).

Facts from Wireshark's ERF reader and erf_record.h and Endace's ERF types
reference; the code is this project's own.
"""
from __future__ import annotations

import numpy as np

from hftlab.errors import DataError
from hftlab.capture._bytes import be16, le32
from hftlab.capture._jit import jit

RECORD_HEADER, EXT_HEADER, ETH_PAD = 16, 8, 2
NS = 1_000_000_000
HALF = 1 << 31                      # 0.5 in units of 2^-32: round to nearest ns

T_LEGACY, T_ETH, T_COLOR_ETH, T_DSM_COLOR_ETH, T_COLOR_HASH_ETH = 0, 2, 11, 16, 20
T_IPV4, T_IPV6, T_META, T_PAD = 22, 23, 27, 48
ETH_TYPES = (T_ETH, T_COLOR_ETH, T_DSM_COLOR_ETH, T_COLOR_HASH_ETH)
COLOR_TYPES = (T_COLOR_ETH, T_DSM_COLOR_ETH, T_COLOR_HASH_ETH)
TYPE_NAMES = {1: "HDLC_POS", 2: "ETH", 3: "ATM", 4: "AAL5", 5: "MC_HDLC", 6: "MC_RAW", 7: "MC_ATM",
              8: "MC_RAW_CHANNEL", 9: "MC_AAL5", 10: "COLOR_HDLC_POS", 11: "COLOR_ETH",
              12: "MC_AAL2", 13: "IP_COUNTER", 14: "TCP_FLOW_COUNTER", 15: "DSM_COLOR_HDLC_POS",
              16: "DSM_COLOR_ETH", 17: "COLOR_MC_HDLC_POS", 18: "AAL2", 19: "COLOR_HASH_POS",
              20: "COLOR_HASH_ETH", 21: "INFINIBAND", 22: "IPV4", 23: "IPV6", 24: "RAW_LINK",
              25: "INFINIBAND_LINK", 27: "META", 28: "OPA_SNC", 29: "OPA_9B", 48: "PAD"}
LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6 = 1, 228, 229

F_IFACE, F_VLEN, F_TRUNC, F_RXERR, F_DSERR, F_IFACE_HI, F_RESERVED = 0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

SNIFF_BYTES = 1 << 16               # how much of the file's start detection looks at
SNIFF_RECORDS = 20
YEAR_S = 3600 * 24 * 365

# status codes (as _pcap: below ST_TRUNC_HEADER is not an error)
ST_FULL, ST_EOF = 0, 1
E_TRUNC_HEADER, E_RLEN, E_TRUNC_RECORD, E_EXT, E_ETH_PAD = 2, 3, 4, 5, 6


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t & 0x7F, f"type {t & 0x7F}")


def interface_of(flags: int) -> int:
    return (flags & F_IFACE) | ((flags & F_IFACE_HI) >> 4)


def ts_ns(raw: int) -> int:
    """The exact rounding of a raw 64-bit ERF timestamp to ns (Python ints)."""
    return (raw >> 32) * NS + (((raw & 0xFFFFFFFF) * NS + HALF) >> 32)


def _structure_ok(head: bytes, pos: int) -> bool:
    """The record header at pos: rlen >= 16, a type other than 0 (legacy),
    extension headers and the Ethernet pad inside rlen (as far as head goes)."""
    typ, rlen = head[pos + 8], int.from_bytes(head[pos + 10:pos + 12], "big")
    if rlen < RECORD_HEADER or typ & 0x7F == T_LEGACY:
        return False
    end, body, more = pos + rlen, pos + RECORD_HEADER, typ & 0x80
    while more and body < len(head):
        if body + EXT_HEADER > end:
            return False
        more = head[body] & 0x80
        body += EXT_HEADER
    return bool(more) or typ & 0x7F not in ETH_TYPES or body + ETH_PAD <= end


def parse_erf_header(path: str, head: bytes, size: int | None = None) -> dict | None:
    """Whether a file is ERF, from `head`, its first bytes (SNIFF_BYTES of
    them, or all), and `size`, its length (default len(head)): a dict
    describing the first record, or None.

    The first record must be a whole, well-formed record of a known type with
    the reserved flag bit clear and (unless META or PAD) a non-zero
    timestamp, and must not be a pcap or pcapng magic. Later records within
    `head` (up to SNIFF_RECORDS) must not take the timestamp back by more
    than a second nor ahead by more than a year (Wireshark's heuristics);
    a malformed later record ends the check, so the scanner refuses it at
    its offset rather than the file being called "not ERF".
    """
    size = len(head) if size is None else size
    if len(head) < RECORD_HEADER or head[:4] in (
            b"\x0a\x0d\x0d\x0a", b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1",
            b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"):
        return None
    typ, flags = head[8], head[9]
    rlen = int.from_bytes(head[10:12], "big")
    raw = int.from_bytes(head[:8], "little")
    base = typ & 0x7F
    if (not _structure_ok(head, 0) or rlen > size or flags & F_RESERVED
            or (base not in TYPE_NAMES and not 32 <= base < 48)
            or (raw >> 32 == 0 and base not in (T_META, T_PAD))):
        return None
    info = {"format": "erf", "type": base, "type_name": type_name(typ),
            "extension_headers": bool(typ & 0x80), "flags": flags,
            "interface": interface_of(flags), "rlen": rlen, "lctr": int.from_bytes(head[12:14], "big"),
            "wlen": int.from_bytes(head[14:16], "big"), "ts_ns": ts_ns(raw)}
    pos, prev, checked = 0, None, 0
    while checked < SNIFF_RECORDS and pos + RECORD_HEADER <= len(head) and _structure_ok(head, pos):
        t = head[pos + 8] & 0x7F
        raw = int.from_bytes(head[pos:pos + 8], "little")
        if t not in (T_PAD, T_META):             # these may carry no (or a generation) time
            if prev is not None and raw < prev and (prev - raw) >> 32 > 1:
                return None
            if prev is not None and raw > prev and (raw - prev) >> 32 > YEAR_S:
                return None
            prev = raw
        checked += 1
        pos += int.from_bytes(head[pos + 10:pos + 12], "big")
    info["records_checked"] = checked
    return info


@jit()
def scan_erf(b, pos, size, maxn, off, ts, cap, orig, iface, lt, lctr, rtype, flags, ext, skipped):
    """Index up to maxn Ethernet/IP records from pos. Returns (count, next
    pos, status); on an error status, next pos is the offset of the bad
    record. Skipped record types are counted in skipped[type & 0x7f]; the
    per-packet ERF fields go to lctr (loss counter or colour), rtype (the
    type byte, 0x80 bit included), flags and ext (extension headers)."""
    n = 0
    while n < maxn:
        if pos == size:
            return n, pos, ST_EOF
        if pos + RECORD_HEADER > size:
            return n, pos, E_TRUNC_HEADER
        rlen = be16(b, pos + 10)
        if rlen < RECORD_HEADER:
            return n, pos, E_RLEN
        end = pos + rlen
        if end > size:
            return n, pos, E_TRUNC_RECORD
        t = np.int64(b[pos + 8])
        typ = t & 0x7F
        body = pos + RECORD_HEADER
        k = 0
        more = t & 0x80
        while more:
            if body + EXT_HEADER > end:
                return n, pos, E_EXT
            more = np.int64(b[body]) & 0x80
            body += EXT_HEADER
            k += 1
        if typ == T_ETH or typ == T_COLOR_ETH or typ == T_DSM_COLOR_ETH or typ == T_COLOR_HASH_ETH:
            if body + ETH_PAD > end:
                return n, pos, E_ETH_PAD
            body += ETH_PAD
            link = LINKTYPE_ETHERNET
        elif typ == T_IPV4:
            link = LINKTYPE_IPV4
        elif typ == T_IPV6:
            link = LINKTYPE_IPV6
        else:
            skipped[typ] += 1
            pos = end
            continue
        w = be16(b, pos + 14)
        c = end - body
        if c > w:
            c = w
        frac = le32(b, pos)
        ts[n] = le32(b, pos + 4) * NS + ((frac * NS + HALF) >> 32)
        off[n] = body
        cap[n] = c
        orig[n] = w
        f = np.int64(b[pos + 9])
        iface[n] = (f & F_IFACE) | ((f & F_IFACE_HI) >> 4)
        lt[n] = link
        lctr[n] = be16(b, pos + 12)
        rtype[n] = t
        flags[n] = f
        ext[n] = k
        pos = end
        n += 1
    return n, pos, ST_FULL


def erf_interfaces(snaplen: int = 65535) -> list[dict]:
    """metadata["interfaces"] for an ERF file: the 8 ports the flags can
    name, each its own id in section 0 (packets' `iface` indexes this list)."""
    return [{"index": i, "section": 0, "id": i, "name": f"Port {chr(65 + i)}",
             "linktype": LINKTYPE_ETHERNET, "snaplen": snaplen, "fcslen": 4,
             "tsresol": "2^-32", "tsoffset": 0} for i in range(8)]


def alloc_extra(n: int) -> dict:
    """The ERF-specific index arrays for a batch of n packets."""
    return {"erf_lctr": np.zeros(n, np.int32), "erf_type": np.zeros(n, np.uint8),
            "erf_flags": np.zeros(n, np.uint8), "erf_ext": np.zeros(n, np.int8)}


def skipped_types(skipped: np.ndarray) -> dict[str, int]:
    """{'META': 2, ...} from the scanner's per-type counters."""
    return {type_name(t): int(c) for t, c in enumerate(skipped) if c}


def erf_error(path: str, status: int, pos: int, b: np.ndarray) -> DataError:
    """The DataError for a scanner error status at record offset pos."""
    size = b.size
    if status == E_TRUNC_HEADER:
        return DataError(path, pos, f"ERF record header: truncated file; tried to read "
                         f"{RECORD_HEADER} header bytes, only got {size - pos}")
    rlen = int(be16(b, pos + 10))
    name = type_name(int(b[pos + 8]))
    if status == E_RLEN:
        return DataError(path, pos, f"ERF {name} record: record length {rlen} is shorter than "
                         f"the {RECORD_HEADER}-byte record header")
    if status == E_TRUNC_RECORD:
        return DataError(path, pos, f"ERF {name} record: truncated file; tried to read {rlen} "
                         f"record bytes, only got {size - pos}")
    if status == E_EXT:
        return DataError(path, pos, f"ERF {name} record: extension headers run past the end of "
                         f"the {rlen}-byte record")
    if status == E_ETH_PAD:
        return DataError(path, pos, f"ERF {name} record: no room for the 2-byte Ethernet pad in "
                         f"a {rlen}-byte record")
    return DataError(path, pos, f"ERF {name} record: error {status}")
