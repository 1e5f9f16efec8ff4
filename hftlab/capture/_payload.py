"""Application payloads of a batch: ITCH messages carried in MoldUDP64 and
OUCH 4.2 Enter Orders, decoded by hftlab.model.core into their own tables.

The message blocks of every MoldUDP64 packet of the batch are gathered into
one buffer (a numba loop) and decoded by one `core.decode_itch` call; each
message row is linked back to its packet by the offset of its length prefix,
so a message the ITCH decoder skips cannot shift the others. A message's
MoldUDP64 sequence number is the packet's plus its position in the packet.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from hftlab.model import core
from hftlab.capture import _decode as D
from hftlab.capture import _table as T
from hftlab.capture._bytes import be16
from hftlab.capture._jit import form, jit

ITCH_SCHEMA = pa.schema([("packet_index", pa.int64()), ("ts_ns", pa.int64()),
                         ("mold_seq", pa.uint64())] + list(core.itch_schema()))
# the columns of core.orders_from_ouch's table, spelled out: calling it here
# (on b"") would import pandas (pa.array) into every process that reads a
# capture; tests/test_capture_engine.py checks the two agree
_ORDER_FIELDS = [("token", pa.string()), ("trigger_seq", pa.uint64()), ("instance", pa.uint8()),
                 ("side", pa.string()), ("shares", pa.int64()), ("stock", pa.string()),
                 ("price", pa.int64()), ("tif", pa.int64()), ("type", pa.string()),
                 ("orig_seq", pa.uint64())]
OUCH_SCHEMA = pa.schema([("packet_index", pa.int64()), ("ts_ns", pa.int64())] + _ORDER_FIELDS)


@jit()
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


def itch_table(buf: np.ndarray, off: np.ndarray, packets: pa.RecordBatch, lay: D.Layers,
               use_numba: bool = True) -> pa.Table:
    n = packets.num_rows
    count = lay.mold[1]
    sel = np.flatnonzero(((lay.flags & D.F_MOLD) != 0) & (count > 0) & (count < 0xFFFF))
    if not sel.size:
        return T.empty(ITCH_SCHEMA)
    starts = off[sel] + lay.payload[0, sel] + D.MOLD_HEADER
    ends = off[sel] + lay.payload[0, sel] + lay.payload[1, sel]
    total = int((ends - starts).sum())
    nmsg = int(count[sel].sum())
    out = np.empty(total, np.uint8)
    msg_off = np.empty(nmsg, np.int64)
    msg_row = np.empty(nmsg, np.int64)
    msg_seq = np.empty(nmsg, np.uint64)
    form(_gather_mold, use_numba)(buf, starts.astype(np.int64), ends.astype(np.int64), lay.mold[0, sel], out,
                 msg_off, msg_row, msg_seq)
    itch = core.decode_itch(out.tobytes())
    pos = np.searchsorted(msg_off, T.to_numpy(itch.column("file_offset"), np.int64))
    rows = sel[msg_row[pos]]
    cols = [T.take(packets.column(0), rows), T.take(packets.column(1), rows),
            T.col(pa.uint64(), msg_seq[pos])] + list(itch.columns)
    return pa.Table.from_arrays(cols, schema=ITCH_SCHEMA)


def ouch_table(buf: np.ndarray, off: np.ndarray, packets: pa.RecordBatch, lay: D.Layers) -> pa.Table:
    n = packets.num_rows
    sel = np.flatnonzero((lay.flags & D.F_OUCH) != 0)
    if not sel.size:
        return T.empty(OUCH_SCHEMA)
    starts = off[sel] + lay.payload[0, sel]
    kind = buf[starts]
    if (kind == ord("O")).all():  # Enter Orders only (every strategy but a quoter)
        data = buf[starts[:, None] + np.arange(D.OUCH_ENTER_LEN)].tobytes()
    else:
        lens = np.where(kind == ord("O"), D.OUCH_ENTER_LEN,
                        np.where(kind == ord("U"), D.OUCH_REPLACE_LEN, D.OUCH_CANCEL_LEN))
        data = b"".join(buf[s: s + n].tobytes() for s, n in zip(starts, lens))
    orders = core.orders_from_ouch(data)
    cols = [T.take(packets.column(0), sel), T.take(packets.column(1), sel)] + list(orders.columns)
    return pa.Table.from_arrays(cols, schema=OUCH_SCHEMA)
