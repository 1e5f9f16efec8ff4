"""pcapng (draft-ietf-opsawg-pcapng): block scanner and header blocks.

A file is a list of sections; each opens with a Section Header Block (SHB)
that sets the byte order and forgets every interface of the previous section.
Blocks are ``type (4) | total length (4) | body | total length (4)``, lengths
multiples of 4. Packets come in Enhanced (EPB, type 6), Simple (SPB, 3) and
obsolete Packet Blocks (OPB, 2); each names an interface described by an
Interface Description Block (IDB, 1) earlier in its section, whose
if_tsresol (option 9: 10^-n, or 2^-n when bit 7 is set; default 10^-6) and
if_tsoffset (option 14, seconds) turn the 64-bit timestamp into time.
NRB, ISB, DSB, custom and unknown blocks are counted and skipped.

The numba scanner walks packet blocks and hands SHB and IDB back to Python
(they are rare and carry strings). Header checks follow libpcap's
(pcapng-suite/libpcap-reject): version 1.0 (or 1.2), SHB length < 1 MiB,
block length >= 12 and a multiple of 4, at most one if_tsresol/if_tsoffset
of the right lengths, opt_endofopt of length 0.
"""
from __future__ import annotations

import struct

import numpy as np

from hftlab.errors import DataError
from hftlab.capture._bytes import rd16, rd32
from hftlab.capture._jit import jit
from hftlab.capture._pcap import TS_NULL, TS_OVERFLOW, TS_SENTINEL_MAX

BT_SHB, BT_IDB, BT_OPB, BT_SPB, BT_NRB, BT_ISB, BT_EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
BT_DSB, BT_CB, BT_DCB = 0x0A, 0x00000BAD, 0x40000BAD
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB_INSANE_MAX = 1048576                 # libpcap BT_SHB_INSANE_MAX
BLOCK_NAMES = {BT_SHB: "Section Header", BT_IDB: "Interface Description", BT_OPB: "Packet (obsolete)",
               BT_SPB: "Simple Packet", BT_NRB: "Name Resolution", BT_ISB: "Interface Statistics",
               BT_EPB: "Enhanced Packet", BT_DSB: "Decryption Secrets", BT_CB: "Custom",
               BT_DCB: "Custom (do not copy)", 9: "systemd Journal Export"}
NS = 1_000_000_000

# opt columns of the scanner (per packet)
O_FLAGS, O_COMMENT_OFF, O_COMMENT_LEN, O_HASH_OFF, O_HASH_LEN, O_DROPS, O_PACKETID, O_QUEUE, O_PRESENT = range(9)
P_FLAGS, P_COMMENT, P_HASH, P_DROPS, P_PACKETID, P_QUEUE = 1, 2, 4, 8, 16, 32
# skipped block counters
C_NRB, C_ISB, C_DSB, C_CUSTOM, C_OTHER = range(5)

# status codes
ST_FULL, ST_EOF, ST_SHB, ST_IDB = 0, 1, 2, 3
E_TRUNC_HEADER, E_LEN_SMALL, E_LEN_MULT4, E_TRUNC_BLOCK, E_LEN_TRAILER = 10, 11, 12, 13, 14
E_NO_IDB, E_BAD_IFACE, E_CAPLEN, E_OPTION, E_OPTION_LEN = 15, 16, 17, 18, 19


def block_name(t: int) -> str:
    return BLOCK_NAMES.get(t, f"type 0x{t:08x}") + " Block"


def block_error(path: str, b: np.ndarray, big: bool, status: int, pos: int, aux: int) -> DataError:
    """The DataError for a scanner error status at block offset pos."""
    size = b.size
    if status == E_TRUNC_HEADER:
        return DataError(path, pos, f"block header: truncated pcapng dump file; tried to read "
                         f"8 bytes, only got {size - pos}")
    name = block_name(int(rd32(b, pos, big)))
    blen = int(rd32(b, pos + 4, big))
    reasons = {
        E_LEN_SMALL: f"block in pcapng dump file has a length of {blen} < 12",
        E_LEN_MULT4: f"block in pcapng dump file has a length of {blen} that is not a multiple of 4",
        E_TRUNC_BLOCK: f"truncated pcapng dump file; tried to read {blen} bytes, only got {size - pos}",
        E_LEN_TRAILER: f"total length {blen} at the start but {aux} at the end of the block",
        E_NO_IDB: "the capture file has a packet block before any Interface Description Blocks",
        E_BAD_IFACE: f"packet block names interface {aux}, which has no Interface Description Block "
                     "in this section",
        E_CAPLEN: f"captured length {aux} does not fit in a block of {blen} bytes",
        E_OPTION: f"option at byte {aux} runs past the end of the block",
        E_OPTION_LEN: f"option at byte {aux} has a length that does not match its type",
    }
    return DataError(path, pos, f"{name}: {reasons.get(status, f'error {status}')}")


# ----------------------------------------------------------------------------- SHB / IDB
def _options(path: str, data: bytes, start: int, base: int, order: str, name: str):
    """Yield (code, value, offset) of an option list; DataError when malformed."""
    o = start
    while o + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, o)
        if code == 0:
            if length != 0:
                raise DataError(path, base + o, f"{name}: has opt_endofopt option with length {length} != 0")
            return
        if o + 4 + length > len(data):
            raise DataError(path, base + o, f"{name}: option {code} with length {length} runs past "
                            "the end of the block")
        yield code, data[o + 4:o + 4 + length], base + o
        o += 4 + ((length + 3) & ~3)


def _text(v: bytes) -> str:
    return v.rstrip(b"\0").decode("utf-8", "replace")


def parse_shb(path: str, b: np.ndarray, pos: int) -> dict:
    """Section Header Block at pos: byte order, version, options, length."""
    size = b.size
    if pos + 12 > size:
        raise DataError(path, pos, f"Section Header Block: truncated pcapng dump file; tried to read "
                        f"16 bytes, only got {size - pos}")
    magic = bytes(b[pos + 8:pos + 12])
    if magic == struct.pack("<I", BYTE_ORDER_MAGIC):
        order = "<"
    elif magic == struct.pack(">I", BYTE_ORDER_MAGIC):
        order = ">"
    else:
        raise DataError(path, pos + 8, f"Section Header Block: bad byte-order magic 0x{magic.hex()}")
    blen = struct.unpack(order + "I", bytes(b[pos + 4:pos + 8]))[0]
    if blen < 28 or blen > SHB_INSANE_MAX:
        raise DataError(path, pos, f"Section Header Block in pcapng dump file has invalid length "
                        f"{blen} (must be 28 to {SHB_INSANE_MAX})")
    if blen % 4:
        raise DataError(path, pos, f"Section Header Block in pcapng dump file has a length of {blen} "
                        "that is not a multiple of 4")
    if pos + blen > size:
        raise DataError(path, pos, f"Section Header Block: truncated pcapng dump file; tried to read "
                        f"{blen} bytes, only got {size - pos}")
    data = bytes(b[pos:pos + blen])
    major, minor = struct.unpack_from(order + "HH", data, 12)
    if not (major == 1 and minor in (0, 2)):
        raise DataError(path, pos + 12, f"Section Header Block: unsupported pcapng savefile version "
                        f"{major}.{minor}")
    if struct.unpack_from(order + "I", data, blen - 4)[0] != blen:
        raise DataError(path, pos, "Section Header Block: total length at the end differs from the start")
    opts: dict[str, str] = {}
    names = {1: "comment", 2: "hardware", 3: "os", 4: "userappl"}
    for code, value, _ in _options(path, data[:blen - 4], 24, pos, order, "Section Header Block"):
        if code in names:
            opts.setdefault(names[code], _text(value))
    return {"offset": pos, "byte_order": "big" if order == ">" else "little", "big": order == ">",
            "version": f"{major}.{minor}", "length": blen, "options": opts}


def parse_idb(path: str, b: np.ndarray, pos: int, big: bool) -> dict:
    """Interface Description Block at pos (already length-checked by the scanner)."""
    order = ">" if big else "<"
    blen = int(rd32(b, pos + 4, big))
    data = bytes(b[pos:pos + blen - 4])
    name = "Interface Description Block"
    if blen < 20:
        raise DataError(path, pos, f"{name}: length {blen} < 20")
    linktype, _, snaplen = struct.unpack_from(order + "HHI", data, 8)
    res_kind, res_exp, tsoffset = 0, 6, 0
    seen: set[int] = set()
    info: dict = {"offset": pos, "linktype": linktype, "snaplen": snaplen}
    names = {1: "comment", 2: "name", 3: "description", 12: "os", 15: "hardware"}
    for code, value, at in _options(path, data, 16, pos, order, name):
        if code == 9:
            if len(value) != 1:
                raise DataError(path, at, f"{name} has if_tsresol option with length {len(value)} != 1")
            if 9 in seen:
                raise DataError(path, at, f"{name} has more than one if_tsresol option")
            res_kind, res_exp = value[0] >> 7, value[0] & 0x7F
            if res_kind == 0 and res_exp > 19:
                raise DataError(path, at, f"{name} if_tsresol option resolution 10^-{res_exp} is too high")
            if res_kind == 1 and res_exp > 63:
                raise DataError(path, at, f"{name} if_tsresol option resolution 2^-{res_exp} is too high")
        elif code == 14:
            if len(value) != 8:
                raise DataError(path, at, f"{name} has if_tsoffset option with length {len(value)} != 8")
            if 14 in seen:
                raise DataError(path, at, f"{name} has more than one if_tsoffset option")
            tsoffset = struct.unpack(order + "q", value)[0]
        elif code == 13 and len(value) == 1:
            info["fcslen"] = value[0]
        elif code in names:
            info.setdefault(names[code], _text(value))
        seen.add(code)
    info.update(tsresol=f"{'2' if res_kind else '10'}^-{res_exp}", res_kind=res_kind,
                res_exp=res_exp, tsoffset=tsoffset)
    return info


# ----------------------------------------------------------------------------- numba scanner
_MAX_SEC = 9223372036                    # int64 max = 9223372036 s + 854775807 ns
_MAX_SUB = 854775807
_MIN_SEC = -9223372037                   # int64 min = -9223372037 s + 145224192 ns
_MIN_SUB = 145224192


@jit(inline=True)
def _pow10(e):
    p = np.uint64(1)
    for _ in range(e):
        p *= np.uint64(10)
    return p


@jit()
def combine_ns(sec, sub, off_s):
    """sec (uint64 s) + off_s (int64 s, if_tsoffset) + sub (ns in [0, 10^9)) as
    exact int64 ns; TS_OVERFLOW when int64 ns cannot hold it (or it would
    read as one of the sentinels, year 1677)."""
    if off_s >= 0:
        if sec > np.uint64(_MAX_SEC) or off_s > _MAX_SEC:
            return TS_OVERFLOW
        s = np.int64(sec) + off_s
    else:
        neg = np.uint64(-(off_s + 1)) + np.uint64(1)          # |off_s|, also for int64 min
        if sec >= neg:
            d = sec - neg
            if d > np.uint64(_MAX_SEC):
                return TS_OVERFLOW
            s = np.int64(d)
        else:
            d = neg - sec
            if d > np.uint64(-_MIN_SEC):
                return TS_OVERFLOW
            s = -np.int64(d)
    if s > _MAX_SEC or (s == _MAX_SEC and sub > _MAX_SUB):
        return TS_OVERFLOW
    if s < _MIN_SEC or (s == _MIN_SEC and sub < _MIN_SUB):
        return TS_OVERFLOW
    v = (s + 1) * NS + (sub - NS) if s == _MIN_SEC else s * NS + sub
    if v <= TS_SENTINEL_MAX:
        return TS_OVERFLOW
    return v


@jit()
def ts_to_ns(hi, lo, kind, exp, off_s):
    """Exact ns since the epoch from a pcapng 64-bit timestamp in units of
    10^-exp s (kind 0) or 2^-exp s (kind 1), plus if_tsoffset seconds. Below
    1 ns precision floors. A time that int64 ns cannot hold (after
    2262-04-11, or before 1677) gives TS_OVERFLOW, never a wrapped value."""
    t = (np.uint64(hi) << np.uint64(32)) | np.uint64(lo)
    if kind == 0:
        if off_s == 0:                 # the common cases: us (the default) and ns, no offset
            if exp == 6 and t <= np.uint64(9223372036854775):
                return np.int64(t) * 1000
            if exp == 9 and t <= np.uint64(9223372036854775807):
                return np.int64(t)
        p = _pow10(exp)
        sec = t // p
        rem = t - sec * p
        if exp <= 9:
            sub = np.int64(rem) * np.int64(_pow10(9 - exp))
        else:
            sub = np.int64(rem // _pow10(exp - 9))
        return combine_ns(sec, sub, off_s)
    e = np.uint64(exp)
    sec = t >> e
    frac = t & ((np.uint64(1) << e) - np.uint64(1))
    bn = np.uint64(NS)
    if exp <= 32:
        sub = (frac * bn) >> e
    else:
        hi_f = frac >> np.uint64(32)
        lo_f = frac & np.uint64(0xFFFFFFFF)
        sub = (hi_f * bn + ((lo_f * bn) >> np.uint64(32))) >> (e - np.uint64(32))
    return combine_ns(sec, np.int64(sub), off_s)


@jit()
def _packet_options(b, o, oend, big, i, opt):
    """EPB/OPB options in [o, oend). Returns -1 when fine, else the offset of
    the bad option (negated status in opt[i, O_PRESENT] says which)."""
    while o + 4 <= oend:
        code = rd16(b, o, big)
        ln = rd16(b, o + 2, big)
        if code == 0:
            return -1
        v = o + 4
        if v + ln > oend:
            opt[i, O_PRESENT] = -E_OPTION
            return o
        if code == 1 and not (opt[i, O_PRESENT] & P_COMMENT):
            opt[i, O_COMMENT_OFF] = v
            opt[i, O_COMMENT_LEN] = ln
            opt[i, O_PRESENT] |= P_COMMENT
        elif code == 2:
            if ln != 4:
                opt[i, O_PRESENT] = -E_OPTION_LEN
                return o
            opt[i, O_FLAGS] = rd32(b, v, big)
            opt[i, O_PRESENT] |= P_FLAGS
        elif code == 3 and not (opt[i, O_PRESENT] & P_HASH):
            opt[i, O_HASH_OFF] = v
            opt[i, O_HASH_LEN] = ln
            opt[i, O_PRESENT] |= P_HASH
        elif code == 4 or code == 5:
            if ln != 8:
                opt[i, O_PRESENT] = -E_OPTION_LEN
                return o
            val = np.int64((rd32(b, v + 4, big) << 32) | rd32(b, v, big)) if not big else \
                np.int64((rd32(b, v, big) << 32) | rd32(b, v + 4, big))
            opt[i, O_DROPS if code == 4 else O_PACKETID] = val
            opt[i, O_PRESENT] |= P_DROPS if code == 4 else P_PACKETID
        elif code == 6:
            if ln != 4:
                opt[i, O_PRESENT] = -E_OPTION_LEN
                return o
            opt[i, O_QUEUE] = rd32(b, v, big)
            opt[i, O_PRESENT] |= P_QUEUE
        o = v + ((ln + 3) & ~3)
    return -1


@jit()
def scan_pcapng(b, pos, size, n, maxn, big, n_if, if_lt, if_snap, if_kind, if_exp, if_off_s,
                if_global, off, ts, cap, orig, iface, lt, opt, counts):
    """Index packet blocks from pos into rows n.. of the output arrays.
    Returns (rows filled, pos, status, aux): status ST_SHB / ST_IDB stop at
    such a block for Python; error statuses point pos at the bad block.
    if_off_s is each interface's if_tsoffset in seconds; ts gets the
    TS_NULL / TS_OVERFLOW sentinels of hftlab.capture._pcap where there is
    no (representable) time."""
    while n < maxn:
        if pos == size:
            return n, pos, ST_EOF, 0
        if pos + 8 > size:
            return n, pos, E_TRUNC_HEADER, 0
        bt = rd32(b, pos, big)
        if bt == BT_SHB:
            return n, pos, ST_SHB, 0
        blen = rd32(b, pos + 4, big)
        if blen < 12:
            return n, pos, E_LEN_SMALL, 0
        if blen % 4:
            return n, pos, E_LEN_MULT4, 0
        if pos + blen > size:
            return n, pos, E_TRUNC_BLOCK, 0
        tail = rd32(b, pos + blen - 4, big)
        if tail != blen:
            return n, pos, E_LEN_TRAILER, tail
        if bt == BT_IDB:
            return n, pos, ST_IDB, 0
        if bt == BT_EPB or bt == BT_OPB or bt == BT_SPB:
            if n_if == 0:
                return n, pos, E_NO_IDB, 0
            opt[n, O_PRESENT] = 0
            if bt == BT_SPB:
                if blen < 16:
                    return n, pos, E_CAPLEN, 0
                k = 0
                o_len = rd32(b, pos + 8, big)
                c = blen - 16
                if o_len < c:
                    c = o_len
                if if_snap[0] != 0 and if_snap[0] < c:
                    c = if_snap[0]
                data = pos + 12
                ts[n] = TS_NULL                           # no timestamp in an SPB
            else:
                if blen < 32:
                    return n, pos, E_CAPLEN, 0
                k = rd32(b, pos + 8, big) if bt == BT_EPB else rd16(b, pos + 8, big)
                if k >= n_if:
                    return n, pos, E_BAD_IFACE, k
                c = rd32(b, pos + 20, big)
                o_len = rd32(b, pos + 24, big)
                data = pos + 28
                padded = (c + 3) & ~3
                if data + padded > pos + blen - 4:
                    return n, pos, E_CAPLEN, c
                ts[n] = ts_to_ns(rd32(b, pos + 12, big), rd32(b, pos + 16, big), if_kind[k], if_exp[k],
                                 if_off_s[k])
                bad = _packet_options(b, data + padded, pos + blen - 4, big, n, opt)
                if bad >= 0:
                    return n, pos, -opt[n, O_PRESENT], bad
            off[n] = data
            cap[n] = c
            orig[n] = o_len
            iface[n] = if_global[k]
            lt[n] = if_lt[k]
            n += 1
        elif bt == BT_NRB:
            counts[C_NRB] += 1
        elif bt == BT_ISB:
            counts[C_ISB] += 1
        elif bt == BT_DSB:
            counts[C_DSB] += 1
        elif bt == BT_CB or bt == BT_DCB:
            counts[C_CUSTOM] += 1
        else:
            counts[C_OTHER] += 1
        pos += blen
    return n, pos, ST_FULL, 0
