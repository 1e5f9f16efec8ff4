"""Application payloads of a batch: ITCH messages carried in MoldUDP64 and
OUCH 4.2 Enter Orders, decoded by hftlab.model.core into their own tables.

The message blocks of every MoldUDP64 packet of the batch are gathered into
one buffer (a numba loop) and decoded by one `core.decode_itch` call; each
message row is linked back to its packet by the offset of its length prefix,
so a message the ITCH decoder skips cannot shift the others. A message's
MoldUDP64 sequence number is the packet's plus its position in the packet.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

from hftlab.model import core
from hftlab.capture import _decode as D
from hftlab.capture._bytes import JIT, be16

ITCH_SCHEMA = pa.schema([("packet_index", pa.int64()), ("ts_ns", pa.int64()),
                         ("mold_seq", pa.uint64())] + list(core.itch_schema()))
_OUCH_EMPTY = core.orders_from_ouch(b"")
OUCH_SCHEMA = pa.schema([("packet_index", pa.int64()), ("ts_ns", pa.int64())] + list(_OUCH_EMPTY.schema))


@nb.njit(**JIT)
def _gather_mold(b, starts, ends, seqs, out, msg_off, msg_row, msg_seq):
    """Copy each packet's message blocks [starts[k], ends[k]) into out and
    list where every length prefix lands; returns (bytes, messages)."""
    w = 0
    m = 0
    for k in range(starts.size):
        r = starts[k]
        j = 0
        while r + 2 <= ends[k]:
            msg_off[m] = w + (r - starts[k])
            msg_row[m] = k
            msg_seq[m] = seqs[k] + j
            m += 1
            j += 1
            r += 2 + be16(b, r)
        n = ends[k] - starts[k]
        out[w:w + n] = b[starts[k]:ends[k]]
        w += n
    return w, m


def itch_table(buf: np.ndarray, off: np.ndarray, packets: pa.RecordBatch, lay: D.Layers) -> pa.Table:
    n = packets.num_rows
    count = lay.mold[1]
    sel = np.flatnonzero(((lay.flags & D.F_MOLD) != 0) & (count > 0) & (count < 0xFFFF))
    if not sel.size:
        return ITCH_SCHEMA.empty_table()
    starts = off[sel] + lay.payload[0, sel] + D.MOLD_HEADER
    ends = off[sel] + lay.payload[0, sel] + lay.payload[1, sel]
    total = int((ends - starts).sum())
    nmsg = int(count[sel].sum())
    out = np.empty(total, np.uint8)
    msg_off = np.empty(nmsg, np.int64)
    msg_row = np.empty(nmsg, np.int64)
    msg_seq = np.empty(nmsg, np.uint64)
    _gather_mold(buf, starts.astype(np.int64), ends.astype(np.int64), lay.mold[0, sel], out,
                 msg_off, msg_row, msg_seq)
    itch = core.decode_itch(out.tobytes())
    pos = np.searchsorted(msg_off, itch.column("file_offset").to_numpy())
    rows = sel[msg_row[pos]]
    take = pa.array(rows)
    cols = [packets.column(0).take(take), packets.column(1).take(take),
            pa.array(msg_seq[pos], pa.uint64())] + list(itch.columns)
    return pa.Table.from_arrays(cols, schema=ITCH_SCHEMA)


def ouch_table(buf: np.ndarray, off: np.ndarray, packets: pa.RecordBatch, lay: D.Layers) -> pa.Table:
    n = packets.num_rows
    sel = np.flatnonzero((lay.flags & D.F_OUCH) != 0)
    if not sel.size:
        return OUCH_SCHEMA.empty_table()
    starts = off[sel] + lay.payload[0, sel]
    data = buf[starts[:, None] + np.arange(D.OUCH_ENTER_LEN)]
    orders = core.orders_from_ouch(data.tobytes())
    take = pa.array(sel)
    cols = [packets.column(0).take(take), packets.column(1).take(take)] + list(orders.columns)
    return pa.Table.from_arrays(cols, schema=OUCH_SCHEMA)
