"""Classic libpcap files: the 24-byte file header and the record scanner.

File header (pcap-savefile(5), draft-ietf-opsawg-pcap):
  magic (4) | version major (2) | minor (2) | thiszone (4) | sigfigs (4)
  | snaplen (4) | FCS bits (4 high bits) + reserved + link type (low 16)
Magic 0xA1B2C3D4 means microsecond timestamps, 0xA1B23C4D nanoseconds; read
in the other byte order they say the file was written big- (or little-)
endian. Each record is ts_sec (u32) | ts_frac (u32) | caplen | origlen, then
caplen bytes. Checks follow libpcap's: version 2.x with minor <= 4, reserved
link-type bits zero, caplen not above max(snaplen, 262144).
"""
from __future__ import annotations

import struct

import numpy as np

from hftlab.errors import DataError
from hftlab.capture._bytes import rd32
from hftlab.capture._jit import jit

MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
FILE_HEADER, RECORD_HEADER = 24, 16
MAX_SNAPLEN = 262144                      # libpcap's MAXIMUM_SNAPLEN
NS = 1_000_000_000
# Timestamp sentinels the scanners write instead of a value (docs: hftlab.capture);
# the reader turns them into a null ts_ns plus a ts_error reason. TS_NULL: the
# block has no timestamp (pcapng SPB), not an error.
TS_NULL = np.iinfo(np.int64).min
TS_BAD_SUBSEC = TS_NULL + 1               # pcap sub-second field >= 10^6 us / 10^9 ns
TS_OVERFLOW = TS_NULL + 2                 # the time does not fit int64 ns (after 2262)
TS_SENTINEL_MAX = TS_NULL + 2

# scanner status codes
ST_FULL, ST_EOF, ST_TRUNC_HEADER, ST_TRUNC_DATA, ST_CAPLEN = 0, 1, 2, 3, 4


def parse_header(path: str, head: bytes) -> dict:
    """Check a pcap file header; return its fields (DataError when invalid)."""
    if len(head) < 4:
        raise DataError(path, 0, f"pcap file header: truncated dump file; tried to read 4 "
                        f"file header bytes, only got {len(head)}")
    for order, big in (("<", False), (">", True)):
        magic = struct.unpack(order + "I", head[:4])[0]
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise DataError(path, 0, f"not a pcap file (magic 0x{head[:4].hex()})")
    if len(head) < FILE_HEADER:
        raise DataError(path, 0, f"pcap file header: truncated dump file; tried to read "
                        f"{FILE_HEADER} file header bytes, only got {len(head)}")
    major, minor, zone, sigfigs, snaplen, ltfield = struct.unpack(order + "HHiIII", head[4:24])
    if major != 2 or minor > 4:
        raise DataError(path, 4, f"pcap file header: unsupported pcap savefile version {major}.{minor}")
    if ltfield & 0x03FF0000:
        raise DataError(path, 20, f"pcap file header: savefile linktype reserved field not zero "
                        f"(0x{ltfield & 0x03FF0000:08x})")
    fcs = (ltfield >> 28) * 2 if ltfield & 0x04000000 else None   # FCS length in bytes
    return {"format": "pcap", "byte_order": "big" if big else "little", "big": big,
            "nanosecond": magic == MAGIC_NS, "version": f"{major}.{minor}",
            "thiszone": zone, "snaplen": snaplen, "linktype": ltfield & 0xFFFF, "fcs_len": fcs}


@jit()
def scan_pcap(b, pos, size, maxn, big, nano, max_caplen, off, ts, cap, orig):
    """Index up to maxn records from pos. Returns (count, next pos, status);
    on an error status, next pos is the offset of the bad record."""
    mult = 1 if nano else 1000
    frac_max = NS if nano else 1_000_000
    n = 0
    while n < maxn:
        if pos == size:
            return n, pos, ST_EOF
        if pos + RECORD_HEADER > size:
            return n, pos, ST_TRUNC_HEADER
        c = rd32(b, pos + 8, big)
        if c > max_caplen:
            return n, pos, ST_CAPLEN
        if pos + RECORD_HEADER + c > size:
            return n, pos, ST_TRUNC_DATA
        frac = rd32(b, pos + 4, big)
        # ts_sec is unsigned (2^32 - 1 s is in 2106, < int64 ns max): never overflows;
        # an out-of-range fraction is flagged, never carried into the seconds
        if frac >= frac_max:
            ts[n] = TS_BAD_SUBSEC
        else:
            ts[n] = rd32(b, pos, big) * NS + frac * mult
        cap[n] = c
        orig[n] = rd32(b, pos + 12, big)
        off[n] = pos + RECORD_HEADER
        pos += RECORD_HEADER + c
        n += 1
    return n, pos, ST_FULL


def scan_error(path: str, status: int, pos: int, b: np.ndarray, big: bool, snaplen: int) -> DataError:
    size = b.size
    if status == ST_TRUNC_HEADER:
        return DataError(path, pos, f"pcap record header: truncated dump file; tried to read "
                         f"{RECORD_HEADER} header bytes, only got {size - pos}")
    c = int(rd32(b, pos + 8, big))
    if status == ST_CAPLEN:
        return DataError(path, pos, f"pcap record header: invalid packet capture length {c}, "
                         f"bigger than the snapshot length {max(snaplen, MAX_SNAPLEN)}")
    return DataError(path, pos, f"pcap record: truncated dump file; tried to read {c} captured "
                     f"bytes, only got {size - pos - RECORD_HEADER}")
