"""Arrow schemas of the capture tables and the conversion of kernel arrays.

Representation choices (stable, documented in hftlab.capture):
* times are int64 ns since the Unix epoch (UTC), exact integers;
* MAC addresses are fixed_size_binary(6) in wire order;
* IP addresses are fixed_size_binary(16): IPv6 as is, IPv4 as the
  IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 2.5.5.2), so one column
  holds both; `ip_version` tells them apart and `format_ip` prints them;
* absent values are nulls (a UDP port of a TCP-less frame, a VLAN id of an
  untagged one), never zeros;
* `ts_ns` is null where the file holds no time (pcapng Simple Packet Block,
  `ts_error` null) or no valid one (`ts_error` names why: TS_ERROR_NAMES);
* `interface` is the interface id within the pcapng section `section`
  (tshark's frame.interface_id); pcap files have one, 0 in section 0;
* ERF records keep their header fields (`erf_type` without the extension
  bit, the raw `erf_flags` byte, `erf_lctr`: loss counter, or colour for the
  COLOR_* types, and the number of extension headers); these columns are
  null for pcap and pcapng packets, as the EPB option columns are for pcap
  and ERF ones.
Arrays are wrapped without copying where Arrow allows it, and built from
buffers (never ``pa.array`` or ``to_numpy``, which import pandas, ~0.3 s of a
small file's ingest).
"""
from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa

from hftlab.capture import _decode as D
from hftlab.capture import _pcapng as G
from hftlab.capture._trailers import TRAILER_KINDS

PACKET_SCHEMA = pa.schema([
    ("packet_index", pa.int64()), ("ts_ns", pa.int64()), ("interface", pa.int32()),
    ("section", pa.int32()), ("ts_error", pa.dictionary(pa.int8(), pa.string())),
    ("caplen", pa.uint32()), ("origlen", pa.uint32()), ("linktype", pa.uint16()),
    ("eth_src", pa.binary(6)), ("eth_dst", pa.binary(6)), ("ethertype", pa.uint16()),
    ("vlan", pa.uint16()), ("vlan_inner", pa.uint16()), ("ip_version", pa.uint8()),
    ("ip_src", pa.binary(16)), ("ip_dst", pa.binary(16)), ("ip_proto", pa.uint8()),
    ("ip_fragment", pa.bool_()), ("src_port", pa.uint16()), ("dst_port", pa.uint16()),
    ("payload_offset", pa.int32()), ("payload_len", pa.int32()),
    ("app", pa.dictionary(pa.int8(), pa.string())),
    ("mold_session", pa.string()), ("mold_seq", pa.uint64()), ("mold_count", pa.uint16()),
    ("trailer_ts_ns", pa.int64()), ("trailer_kind", pa.dictionary(pa.int8(), pa.string())),
    ("trailer_device", pa.uint16()), ("trailer_port", pa.uint8()),
    ("comment", pa.string()), ("epb_flags", pa.uint32()), ("epb_hash", pa.binary()),
    ("epb_dropcount", pa.uint64()), ("epb_packetid", pa.uint64()), ("epb_queue", pa.uint32()),
    ("erf_type", pa.uint8()), ("erf_flags", pa.uint8()), ("erf_lctr", pa.uint16()),
    ("erf_ext_headers", pa.uint8()),
])
#: the pcapng EPB option columns and the ERF record header columns: null for
#: the formats that do not have them
EPB_COLUMNS = PACKET_SCHEMA.names[PACKET_SCHEMA.get_field_index("comment"):
                                  PACKET_SCHEMA.get_field_index("epb_queue") + 1]
ERF_COLUMNS = PACKET_SCHEMA.names[PACKET_SCHEMA.get_field_index("erf_type"):]

PTP_SCHEMA = pa.schema([
    ("packet_index", pa.int64()), ("ts_ns", pa.int64()), ("interface", pa.int32()),
    ("msg_type", pa.uint8()), ("msg_name", pa.dictionary(pa.int8(), pa.string())),
    ("domain", pa.uint8()), ("seq_id", pa.uint16()), ("clock_id", pa.uint64()),
    ("port", pa.uint16()), ("origin_ts_ns", pa.int64()), ("correction_ns", pa.int64()),
    ("correction_scaled", pa.int64()), ("flags", pa.uint16()), ("two_step", pa.bool_()),
    ("version", pa.uint8()), ("minor_version", pa.uint8()), ("sdo_id", pa.uint8()),
    ("log_interval", pa.int8()), ("requesting_clock_id", pa.uint64()),
    ("requesting_port", pa.uint16()),
])

PTP_NAMES = {0: "Sync", 1: "Delay_Req", 2: "Pdelay_Req", 3: "Pdelay_Resp", 8: "Follow_Up",
             9: "Delay_Resp", 10: "Pdelay_Resp_Follow_Up", 11: "Announce", 12: "Signaling",
             13: "Management"}


def _validity(mask: np.ndarray | None) -> pa.Buffer | None:
    if mask is None or mask.all():
        return None
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def strings(values: list, typ: pa.DataType = pa.string()) -> pa.Array:
    """A string (str items) or binary (bytes items) column of a Python list;
    None is null."""
    raw = [v.encode() if isinstance(v, str) else (v or b"") for v in values]
    offsets = np.zeros(len(raw) + 1, np.int32)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    mask = np.array([v is not None for v in values], bool)
    return pa.Array.from_buffers(typ, len(raw), [_validity(mask), pa.py_buffer(offsets),
                                                 pa.py_buffer(b"".join(raw))])


def bools(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A bool column of a numpy bool array (mask: which are present)."""
    bits = pa.py_buffer(np.packbits(values, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(values), [_validity(mask), bits])


def take(column: pa.Array, rows: np.ndarray) -> pa.Array:
    """column[rows] for a primitive column: Array.take without pyarrow.compute
    (whose import is ~0.25 s of a small file's ingest)."""
    n = len(column)
    vals = np.frombuffer(column.buffers()[1], np.dtype(column.type.to_pandas_dtype()))
    mask = None
    if column.null_count:
        bits = np.unpackbits(np.frombuffer(column.buffers()[0], np.uint8), bitorder="little")
        mask = bits[column.offset:column.offset + n][rows].astype(bool)
    return col(column.type, vals[column.offset:column.offset + n][rows], mask)


def to_numpy(column, dtype) -> np.ndarray:
    """A null-free primitive column as a read-only numpy view (or a copy of
    its chunks)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.frombuffer(c.buffers()[1], dtype)[c.offset:c.offset + len(c)] for c in chunks]
    return parts[0] if len(parts) == 1 else np.concatenate(parts or [np.zeros(0, dtype)])


def empty(schema: pa.Schema) -> pa.Table:
    """A table of no rows (as schema.empty_table(), which imports pandas)."""
    return pa.Table.from_batches([pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema],
                                                             schema=schema)])


_PTP_DICT = strings([PTP_NAMES.get(k, f"reserved_{k}") for k in range(16)])
_APP_DICT = strings(D.APP_NAMES)
_TRL_DICT = strings(TRAILER_KINDS)
TS_NULL = np.iinfo(np.int64).min
# ts_error codes (the reader's idx["ts_err"]; 0 = none): the sentinel's distance
# from TS_NULL in hftlab.capture._pcap
TS_ERROR_NAMES = ["", "subsecond_out_of_range", "overflow_int64_ns"]
_TSERR_DICT = strings(TS_ERROR_NAMES)


def col(typ: pa.DataType, values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A primitive or fixed-size-binary Arrow array over numpy memory."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(typ, len(values), [_validity(mask), pa.py_buffer(values)])


def fixed_strings(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """A string column over an (n, width) byte matrix of ASCII text."""
    n, w = values.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [_validity(mask), pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(values))])


def dict_col(codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    idx = col(pa.int8(), codes.astype(np.int8), codes != 0)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _strings(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, mask: np.ndarray,
             typ: pa.DataType) -> pa.Array:
    """String/binary column from (offset, length) pairs into the file; a
    Python loop over the present rows only (comments and hashes are rare)."""
    if not mask.any():
        return pa.nulls(len(mask), typ)
    vals: list = [None] * len(mask)
    for i in np.flatnonzero(mask):
        raw = bytes(buf[offs[i]:offs[i] + lens[i]])
        vals[i] = raw.rstrip(b"\0").decode("utf-8", "replace") if typ == pa.string() else raw
    return strings(vals, typ)


def packet_batch(buf: np.ndarray, idx: dict, lay: D.Layers, first_index: int) -> pa.RecordBatch:
    """One packets RecordBatch from the scanner's index arrays and the layers."""
    n = len(idx["ts"])
    fl = lay.flags

    def has(bit: int) -> np.ndarray:
        return (fl & bit) != 0

    ts = idx["ts"]
    ts_ok = ts != TS_NULL
    ip_ok, l4_ok, pay_ok, mold_ok, trl_ok = has(D.F_IP), has(D.F_L4), has(D.F_PAYLOAD), has(D.F_MOLD), has(D.F_TRAILER)
    # device/port: Metamako and Exablaze HPT trailers carry both; keyframe-based
    # stamps the device of their keyframe when it names one (trailer[1] >= 0)
    kind = lay.trailer_kind
    port_ok = trl_ok & ((kind == 1) | (kind == 2))
    dev_ok = port_ok | (trl_ok & (kind >= 5) & (lay.trailer[1] >= 0))
    opt = idx.get("opt")
    cols = [
        col(pa.int64(), np.arange(first_index, first_index + n, dtype=np.int64)),
        col(pa.int64(), ts, ts_ok),
        col(pa.int32(), idx["if_id"].astype(np.int32, copy=False)),
        col(pa.int32(), idx["section"].astype(np.int32, copy=False)),
        dict_col(idx["ts_err"], _TSERR_DICT),
        col(pa.uint32(), idx["cap"].astype(np.uint32)),
        col(pa.uint32(), idx["orig"].astype(np.uint32)),
        col(pa.uint16(), idx["lt"].astype(np.uint16)),
        col(pa.binary(6), lay.eth[1], has(D.F_ETH_SRC)),
        col(pa.binary(6), lay.eth[0], has(D.F_ETH_DST)),
        col(pa.uint16(), lay.ethertype, has(D.F_ETHERTYPE)),
        col(pa.uint16(), lay.vlan[0], has(D.F_VLAN)),
        col(pa.uint16(), lay.vlan[1], has(D.F_VLAN2)),
        col(pa.uint8(), lay.ip[0], ip_ok),
        col(pa.binary(16), lay.ipaddr[0], ip_ok),
        col(pa.binary(16), lay.ipaddr[1], ip_ok),
        col(pa.uint8(), lay.ip[1], ip_ok),
        bools(has(D.F_FRAGMENT), ip_ok),
        col(pa.uint16(), lay.ports[0], l4_ok),
        col(pa.uint16(), lay.ports[1], l4_ok),
        col(pa.int32(), lay.payload[0], pay_ok),
        col(pa.int32(), lay.payload[1], pay_ok),
        dict_col(lay.app, _APP_DICT),
        fixed_strings(lay.mold_session, mold_ok),
        col(pa.uint64(), lay.mold[0], mold_ok),
        col(pa.uint16(), lay.mold[1].astype(np.uint16), mold_ok),
        col(pa.int64(), lay.trailer[0], trl_ok),
        dict_col(lay.trailer_kind, _TRL_DICT),
        col(pa.uint16(), lay.trailer[1].astype(np.uint16), dev_ok),
        col(pa.uint8(), lay.trailer[2].astype(np.uint8), port_ok),
    ]
    cols += _option_columns(buf, opt, n) + _erf_columns(idx, n)
    return pa.RecordBatch.from_arrays(cols, schema=PACKET_SCHEMA)


_NULLS: dict[tuple[str, int], list[pa.Array]] = {}


def _nulls(names: list[str], n: int) -> list[pa.Array]:
    """Null columns; batches repeat their size, so they are kept (a few)."""
    key = (names[0], n)
    if key not in _NULLS:
        if len(_NULLS) > 8:
            _NULLS.clear()
        _NULLS[key] = [pa.nulls(n, PACKET_SCHEMA.field(k).type) for k in names]
    return _NULLS[key]


def _erf_columns(idx: dict, n: int) -> list[pa.Array]:
    if "erf_type" not in idx:
        return _nulls(ERF_COLUMNS, n)
    return [col(pa.uint8(), idx["erf_type"][:n] & 0x7F), col(pa.uint8(), idx["erf_flags"][:n]),
            col(pa.uint16(), idx["erf_lctr"][:n].astype(np.uint16)),
            col(pa.uint8(), idx["erf_ext"][:n].astype(np.uint8))]


def _option_columns(buf: np.ndarray, opt: np.ndarray | None, n: int) -> list[pa.Array]:
    if opt is None:           # pcap and ERF: always null
        return _nulls(EPB_COLUMNS, n)
    pres = opt[:n, G.O_PRESENT]

    def has(bit: int) -> np.ndarray:
        return (pres & bit) != 0

    return [
        _strings(buf, opt[:n, G.O_COMMENT_OFF], opt[:n, G.O_COMMENT_LEN], has(G.P_COMMENT), pa.string()),
        col(pa.uint32(), opt[:n, G.O_FLAGS].astype(np.uint32), has(G.P_FLAGS)),
        _strings(buf, opt[:n, G.O_HASH_OFF], opt[:n, G.O_HASH_LEN], has(G.P_HASH), pa.binary()),
        col(pa.uint64(), opt[:n, G.O_DROPS].view(np.uint64), has(G.P_DROPS)),
        col(pa.uint64(), opt[:n, G.O_PACKETID].view(np.uint64), has(G.P_PACKETID)),
        col(pa.uint32(), opt[:n, G.O_QUEUE].astype(np.uint32), has(G.P_QUEUE)),
    ]


def ptp_table(packets: pa.RecordBatch, lay: D.Layers) -> pa.Table:
    """The PTP messages of a batch, one row each (PTP_SCHEMA)."""
    n = packets.num_rows
    sel = np.flatnonzero((lay.flags & D.F_PTP) != 0)
    if not sel.size:
        return empty(PTP_SCHEMA)
    s, g, fl = lay.ptp_small[:, sel], lay.ptp_big[:, sel], lay.flags[sel]
    has_ts = (fl & D.F_PTP_TS) != 0
    has_req = (fl & D.F_PTP_REQ) != 0
    cols = [
        take(packets.column(0), sel), take(packets.column(1), sel), take(packets.column(2), sel),
        col(pa.uint8(), s[0].astype(np.uint8)),
        pa.DictionaryArray.from_arrays(col(pa.int8(), s[0].astype(np.int8)), _PTP_DICT),
        col(pa.uint8(), s[4].astype(np.uint8)),
        col(pa.uint16(), s[7].astype(np.uint16)),
        col(pa.uint64(), g[2].view(np.uint64)),
        col(pa.uint16(), s[6].astype(np.uint16)),
        col(pa.int64(), g[1], has_ts),
        col(pa.int64(), g[0] >> 16),                 # floor of the scaled ns
        col(pa.int64(), g[0]),
        col(pa.uint16(), s[5].astype(np.uint16)),
        bools((s[5] & 0x0200) != 0),             # flagField octet 0 bit 1: twoStepFlag
        col(pa.uint8(), s[2].astype(np.uint8)),
        col(pa.uint8(), s[3].astype(np.uint8)),
        col(pa.uint8(), s[1].astype(np.uint8)),
        col(pa.int8(), s[8].astype(np.int8)),
        col(pa.uint64(), g[3].view(np.uint64), has_req),
        col(pa.uint16(), s[9].astype(np.uint16), has_req),
    ]
    return pa.Table.from_arrays(cols, schema=PTP_SCHEMA)


def format_ip(value: bytes | None) -> str | None:
    """Text form of an ip_src/ip_dst value (IPv4-mapped shown as dotted quad)."""
    if value is None:
        return None
    addr = ipaddress.IPv6Address(value)
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def format_mac(value: bytes | None) -> str | None:
    return None if value is None else ":".join(f"{x:02x}" for x in value)
