"""Independent reference readings for the tests, written with Python's struct
module from the ITCH 5.0, MoldUDP64 and OUCH 4.2 specifications, not from the
C sources. The C core must agree with these field by field and order by order.
"""
from __future__ import annotations

import collections
import struct
from dataclasses import dataclass, field
from pathlib import Path

from repo_paths import MOLDUDP64, RITCH, SYNTH  # noqa: F401  (the data the tests read)

# ITCH 5.0 message lengths including the type byte (spec sections 1.1-1.13).
LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
    "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
    "I": 50, "N": 20, "O": 48,
}
# Offset of the 8-byte stock field per type, where the type has one.
STOCK_AT = {"R": 11, "H": 11, "Y": 11, "L": 15, "K": 11, "J": 11, "h": 11, "O": 11, "A": 24,
            "F": 24, "P": 24, "Q": 19, "I": 28, "N": 11}

def iter_framed(data: bytes):
    """(offset, message) for each message of NASDAQ's file framing; a zero
    length prefix falls back to the length the type implies."""
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from(">H", data, off)
        if n == 0:
            n = LENGTHS[chr(data[off + 2])]
        yield off, data[off + 2: off + 2 + n]
        off += 2 + n


def header(m: bytes) -> dict:
    t, loc, trk = struct.unpack_from(">cHH", m, 0)
    return {"msg_type": t.decode(), "stock_locate": loc, "tracking": trk,
            "timestamp_ns": int.from_bytes(m[5:11], "big")}


def _text(raw: bytes, errors: str) -> str:
    """ASCII text; with errors="replace" every byte outside printable ASCII
    reads as '?' (what hftlab puts in Arrow strings for hostile bytes)."""
    if errors == "replace":
        raw = bytes(b if 0x20 <= b < 0x7F else 0x3F for b in raw)
    return raw.decode("ascii")


def parse(m: bytes, errors: str = "strict") -> dict:
    """The stable columns of one message, as the spec lays it out."""
    d = header(m)
    t = d["msg_type"]
    ch = lambda raw: _text(raw, errors)  # noqa: E731
    if t in STOCK_AT:
        d["stock"] = ch(m[STOCK_AT[t]: STOCK_AT[t] + 8].rstrip(b" \0"))
    if t in "AF":
        ref, side, shares, _, price = struct.unpack_from(">Qc I 8s I".replace(" ", ""), m, 11)
        d.update(order_ref=ref, side=ch(side), shares=shares, price=price)
    elif t == "E":
        ref, shares, match = struct.unpack_from(">QIQ", m, 11)
        d.update(order_ref=ref, shares=shares, match_number=match)
    elif t == "C":
        ref, shares, match, printable, price = struct.unpack_from(">QIQcI", m, 11)
        d.update(order_ref=ref, shares=shares, match_number=match, price=price,
                 printable=ch(printable))
    elif t == "X":
        ref, shares = struct.unpack_from(">QI", m, 11)
        d.update(order_ref=ref, shares=shares)
    elif t == "D":
        (d["order_ref"],) = struct.unpack_from(">Q", m, 11)
    elif t == "U":
        ref, new, shares, price = struct.unpack_from(">QQII", m, 11)
        d.update(order_ref=ref, new_order_ref=new, shares=shares, price=price)
    elif t == "P":
        ref, side, shares, _, price, match = struct.unpack_from(">QcI8sIQ", m, 11)
        d.update(order_ref=ref, side=ch(side), shares=shares, price=price, match_number=match)
    elif t == "Q":
        shares, _, price, match, cross = struct.unpack_from(">Q8sIQc", m, 11)
        d.update(shares=shares, price=price, match_number=match, cross_type=ch(cross))
    elif t == "B":
        (d["match_number"],) = struct.unpack_from(">Q", m, 11)
    elif t == "I":
        paired, _, direction = struct.unpack_from(">QQc", m, 11)
        (ref_price,) = struct.unpack_from(">I", m, 44)
        d.update(shares=paired, side=ch(direction), price=ref_price,
                 cross_type=ch(m[48:49]))
    elif t == "S":
        d["event_code"] = ch(m[11:12])
    elif t in "HY":
        d["event_code"] = ch(m[19:20])
    return d


# ----------------------------------------------------------------------------- pcap
def pcap_udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of an Ethernet/IPv4 classic pcap (either byte order)."""
    data = path.read_bytes()
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    (linktype,) = struct.unpack_from(end + "I", data, 20)
    assert linktype == 1, f"{path}: linktype {linktype}"
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack_from(end + "IIII", data, off)
        frame = data[off + 16: off + 16 + caplen]
        off += 16 + caplen
        l3 = 14
        (etype,) = struct.unpack_from(">H", frame, 12)
        while etype in (0x8100, 0x88A8):  # 802.1Q / QinQ tags
            (etype,) = struct.unpack_from(">H", frame, l3 + 2)
            l3 += 4
        if etype != 0x0800 or frame[l3 + 9] != 17:
            continue
        udp = l3 + (frame[l3] & 0x0F) * 4
        (ulen,) = struct.unpack_from(">H", frame, udp + 4)
        out.append(frame[udp + 8: udp + ulen])
    return out


def mold_messages(payload: bytes) -> tuple[bytes, int, list[bytes]]:
    session, seq, count = struct.unpack_from(">10sQH", payload, 0)
    off, msgs = 20, []
    for _ in range(count if count != 0xFFFF else 0):
        (n,) = struct.unpack_from(">H", payload, off)
        msgs.append(payload[off + 2: off + 2 + n])
        off += 2 + n
    return session, seq, msgs


def mold_packet(session: bytes, seq: int, msgs: list[bytes], count: int | None = None) -> bytes:
    body = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
    return struct.pack(">10sQH", session, seq, len(msgs) if count is None else count) + body


def ouch_orders(data: bytes) -> list[dict]:
    """OUCH 4.2 Enter Order messages (49 bytes each) from a concatenation."""
    out = []
    for off in range(0, len(data), 49):
        (t, tok, side, shares, stock, price, tif, firm, display, cap, iso, minq, cross,
         cust) = struct.unpack_from(">c14scI8sII4scccIcc", data, off)
        assert t == b"O"
        tok = tok.decode()
        out.append({"token": tok, "instance": int(tok[:2], 16), "trigger_seq": int(tok[2:], 16),
                    "side": side.decode(), "shares": shares, "stock": stock.decode().rstrip(),
                    "price": price, "tif": tif, "firm": firm.decode(), "display": display.decode(),
                    "capacity": cap.decode(), "iso": iso.decode(), "min_qty": minq,
                    "cross_type": cross.decode(), "customer_type": cust.decode()})
    return out


# ----------------------------------------------------------------------------- engine
U64 = (1 << 64) - 1


@dataclass
class RefEngine:
    """The strategy and risk rules of kernel_src/core, restated in Python from
    their documented contracts (strategy.h, risk.h, engine.h)."""

    cfg: dict
    max_symbols: int = 64
    orders_live: dict = field(default_factory=dict)  # ref -> [locate, side, price, shares]
    levels: dict = field(default_factory=lambda: collections.defaultdict(dict))
    slot_of: dict = field(default_factory=dict)  # locate -> slot
    syms: list = field(default_factory=list)  # [stock, last_signal, last_price]
    risk: list = field(default_factory=list)  # [position, notional, last_trade]
    window: collections.deque = field(default_factory=collections.deque)
    orders: list = field(default_factory=list)
    signals: int = 0
    rejected: collections.Counter = field(default_factory=collections.Counter)

    def _bind(self, d: dict) -> None:
        loc, stock = d["stock_locate"], d.get("stock")
        if stock is None or loc in self.slot_of:
            return
        wanted = self.cfg["strategy"]["symbols"]
        if wanted and stock not in wanted:
            return
        if len(self.syms) == self.max_symbols:
            return
        self.slot_of[loc] = len(self.syms)
        self.syms.append([stock.ljust(8), 0, 0])
        self.risk.append([0, 0, 0])

    def _level_add(self, loc, side, price, shares, n):
        lv = self.levels[(loc, side)]
        s, c = lv.get(price, (0, 0))
        if c + n == 0:
            lv.pop(price, None)
        else:
            lv[price] = (s + shares, c + n)

    def _add(self, ref, loc, side, price, shares) -> bool:
        if ref in self.orders_live:
            return False
        self.orders_live[ref] = [loc, side, price, shares]
        self._level_add(loc, side, price, shares, 1)
        return True

    def _reduce(self, ref, shares) -> None:
        o = self.orders_live[ref]
        shares = min(shares, o[3])
        o[3] -= shares
        self._level_add(o[0], o[1], o[2], -shares, 0)
        if o[3] == 0:
            self._level_add(o[0], o[1], o[2], 0, -1)
            del self.orders_live[ref]

    def _apply(self, d: dict):
        """(changed, locate, exec_price, exec_shares) like book_apply."""
        t = d["msg_type"]
        if t in "AF":
            if d["side"] not in "BS":
                return False, 0, 0, 0
            return self._add(d["order_ref"], d["stock_locate"], d["side"], d["price"],
                             d["shares"]), d["stock_locate"], 0, 0
        if t not in "ECXDU" or d["order_ref"] not in self.orders_live:
            return False, 0, 0, 0
        loc, side, price, remaining = self.orders_live[d["order_ref"]]
        ex_p = ex_s = 0
        if t in "EC":
            ex_s = min(d["shares"], remaining)
            ex_p = price if t == "E" else d["price"]
            self._reduce(d["order_ref"], d["shares"])
        elif t == "X":
            self._reduce(d["order_ref"], d["shares"])
        elif t == "D":
            self._reduce(d["order_ref"], remaining)
        else:
            self._reduce(d["order_ref"], remaining)
            self._add(d["new_order_ref"], loc, side, d["price"], d["shares"])
        return True, loc, ex_p, ex_s

    def best(self, loc, side):
        lv = self.levels.get((loc, side))
        if not lv:
            return None
        p = max(lv) if side == "B" else min(lv)
        return p, lv[p][0]

    def _signal(self, loc) -> int:
        c = self.cfg["strategy"]
        b, a = self.best(loc, "B"), self.best(loc, "S")
        if b is None or a is None:
            return 0, 0, 0
        (bid, bsz), (ask, asz) = b, a
        mid = (bid + ask) // 2
        if ask <= bid:
            return (1 if c["cross_trigger"] else 0), ask, mid
        if ask - bid > c["max_spread"] or bsz < c["min_top_shares"] or asz < c["min_top_shares"]:
            return 0, 0, mid
        num, den = c["imbalance_num"], c["imbalance_den"]
        if (bsz * den) & U64 >= (asz * num) & U64:
            return 1, ask, mid
        if (asz * den) & U64 >= (bsz * num) & U64:
            return -1, bid, mid
        return 0, 0, mid

    def _risk(self, slot, side, shares, price, mid, ts) -> str:
        r = self.cfg["risk"]
        pos, notional, last = self.risk[slot]
        if r["kill"]:
            return "kill"
        if shares == 0 or (r["max_order_shares"] and shares > r["max_order_shares"]):
            return "size"
        newpos = pos + (shares if side == "B" else -shares)
        if r["max_position"] and abs(newpos) > r["max_position"]:
            return "position"
        if r["max_notional"] and notional + price * shares > r["max_notional"]:
            return "notional"
        rate = r["max_orders_per_sec"]
        if rate and len(self.window) >= rate and ts < self.window[0] + 1_000_000_000:
            return "rate"
        if r["price_band_bps"]:
            ref = last or mid
            if ref == 0:
                return "no_reference"
            if abs(price - ref) * 10000 > ref * r["price_band_bps"]:
                return "band"
        self.risk[slot][0] = newpos
        self.risk[slot][1] = notional + price * shares
        if rate:
            self.window.append(ts)
            if len(self.window) > rate:
                self.window.popleft()
        return "ok"

    def on_message(self, m: bytes, seq: int) -> None:
        t = chr(m[0]) if m else ""
        if LENGTHS.get(t) != len(m):
            return
        d = parse(m)
        self._bind(d)
        if t in "PQ":
            slot = self.slot_of.get(d["stock_locate"])
            if slot is not None and d["price"]:
                self.risk[slot][2] = d["price"]
            return
        changed, loc, ex_p, ex_s = self._apply(d)
        if not changed or loc not in self.slot_of:
            return
        slot = self.slot_of[loc]
        if ex_s and ex_p:
            self.risk[slot][2] = ex_p
        sig, price, mid = self._signal(loc)
        sym = self.syms[slot]
        fire = sig != 0 and (sig != sym[1] or price != sym[2])
        sym[1] = sig
        if not fire:
            return
        sym[2] = price
        self.signals += 1
        side = "B" if sig > 0 else "S"
        shares = self.cfg["strategy"]["order_shares"]
        why = self._risk(slot, side, shares, price, mid, d["timestamp_ns"])
        if why != "ok":
            self.rejected[why] += 1
            return
        self.orders.append({"trigger_seq": seq, "side": side, "shares": shares,
                            "stock": sym[0].rstrip(), "price": price})
