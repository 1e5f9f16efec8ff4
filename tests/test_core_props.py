"""Property tests of the C core: round trips, book invariants, risk limits,
and malformed input that must be counted, never crash."""
from __future__ import annotations

import collections
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hftlab.model import core
from hftlab._core import ffi, lib

from itch_ref import LENGTHS, RefEngine, mold_packet, ouch_orders, parse

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SESSION = b"PROPTEST01"

# ----------------------------------------------------------------------------- encoders
stock = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
u16, u32, u64 = (st.integers(0, 2**k - 1) for k in (16, 32, 64))
u48 = st.integers(0, 2**48 - 1)


def hdr(t: str, loc: int, trk: int, ts: int) -> bytes:
    return t.encode() + struct.pack(">HH", loc, trk) + ts.to_bytes(6, "big")


@st.composite
def itch_message(draw) -> bytes:
    """A well-formed message of any ITCH 5.0 type with random field values."""
    t = draw(st.sampled_from(sorted(LENGTHS)))
    h = hdr(t, draw(u16), draw(u16), draw(u48))
    body_len = LENGTHS[t] - 11
    fields = {
        "A": lambda: struct.pack(">Qc", draw(u64), draw(st.sampled_from([b"B", b"S"])))
        + struct.pack(">I8sI", draw(u32), draw(stock).encode().ljust(8), draw(u32)),
        "E": lambda: struct.pack(">QIQ", draw(u64), draw(u32), draw(u64)),
        "U": lambda: struct.pack(">QQII", draw(u64), draw(u64), draw(u32), draw(u32)),
        "Q": lambda: struct.pack(">Q8sIQc", draw(u64), draw(stock).encode().ljust(8), draw(u32),
                                 draw(u64), b"O"),
    }
    if t in fields:
        body = fields[t]()
    elif t == "F":
        body = fields["A"]() + b"MPID"
    else:
        body = draw(st.binary(min_size=body_len, max_size=body_len))
    assert len(h + body) == LENGTHS[t]
    return h + body


@SETTINGS
@given(st.lists(itch_message(), min_size=1, max_size=40))
def test_itch_decode_round_trip(msgs):
    data = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
    rows = core.decode_itch(data).to_pylist()
    assert len(rows) == len(msgs)
    for m, row in zip(msgs, rows):
        for k, v in parse(m, errors="replace").items():
            assert row[k] == v, (k, row, m)


@SETTINGS
@given(st.lists(itch_message(), min_size=0, max_size=30), st.integers(1, 2**40))
def test_mold_round_trip_counts(msgs, seq):
    eng = core.Engine()
    eng.feed_packet(mold_packet(SESSION, 1, []))  # heartbeat: session known, nothing missed
    eng.feed_packet(mold_packet(SESSION, seq, msgs))
    c = eng.counters()
    assert c["mold"]["malformed"] == 0
    assert c["mold"]["messages"] == len(msgs)
    assert c["itch"]["messages"] == len(msgs)
    assert c["mold"]["gap_messages"] == seq - 1
    # the same packet again is a duplicate and changes nothing
    before = eng.counters()
    eng.feed_packet(mold_packet(SESSION, seq, msgs))
    after = eng.counters()
    assert after["itch"] == before["itch"]
    assert after["mold"]["duplicate_messages"] == before["mold"]["duplicate_messages"] + len(msgs)


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 2**48 - 1))
def test_ouch_token_round_trip(instance, seq):
    tok = ffi.new("char[14]")
    lib.ouch_token(tok, instance, seq)
    text = ffi.buffer(tok, 14)[:].decode()
    assert text == f"{instance:02X}{seq:012X}"
    inst, s = ffi.new("uint8_t *"), ffi.new("uint64_t *")
    assert lib.ouch_token_parse(tok, inst, s)
    assert (inst[0], s[0]) == (instance, seq)


@SETTINGS
@given(st.integers(0, 2**48 - 1), st.sampled_from("BS"), u32, stock, u32, st.integers(0, 255))
def test_ouch_encode_decodes_with_struct(seq, side, shares, sym, price, instance):
    o = ffi.new("struct order_intent *")
    o.trigger_seq, o.side, o.shares, o.price = seq, side.encode(), shares, price
    ffi.memmove(o.stock, sym.encode().ljust(8), 8)
    buf = ffi.new("uint8_t[49]")
    assert lib.ouch_encode_order(buf, 49, o, instance) == 49
    assert lib.ouch_encode_order(buf, 48, o, instance) == 0
    (d,) = ouch_orders(ffi.buffer(buf)[:])
    assert (d["trigger_seq"], d["instance"], d["side"], d["shares"], d["stock"], d["price"],
            d["tif"]) == (seq, instance, side, shares, sym, price, 0)
    table = core.orders_from_ouch(ffi.buffer(buf)[:]).to_pylist()[0]
    assert (table["trigger_seq"], table["side"], table["price"]) == (seq, side, price)


# ----------------------------------------------------------------------------- book
@st.composite
def book_ops(draw, n_refs=30):
    """Random A/E/C/X/D/U on a small set of references and 2 locates."""
    ops = []
    for _ in range(draw(st.integers(1, 150))):
        kind = draw(st.sampled_from("AAAECXDU"))
        ref = draw(st.integers(1, n_refs))
        loc = draw(st.integers(1, 2))
        sh = draw(st.integers(0, 500))
        px = draw(st.integers(1, 12)) * 100
        if kind == "A":
            side = draw(st.sampled_from([b"B", b"S"]))
            body = struct.pack(">Qc I8sI".replace(" ", ""), ref, side, sh, b"SYM".ljust(8), px)
        elif kind in "EC":
            body = struct.pack(">QIQ", ref, sh, 7) + (struct.pack(">cI", b"Y", px) if kind == "C" else b"")
        elif kind == "X":
            body = struct.pack(">QI", ref, sh)
        elif kind == "D":
            body = struct.pack(">Q", ref)
        else:
            body = struct.pack(">QQII", ref, draw(st.integers(1, n_refs)), sh, px)
        ops.append(hdr(kind, loc, 0, len(ops)) + body)
    return ops


def _check_book(eng: core.Engine, ref: RefEngine) -> None:
    for loc in (1, 2):
        for side in "BS":
            depth = eng.depth(loc, 100).to_pylist()
            got = {r["price"]: (r["shares"], r["orders"]) for r in depth if r["side"] == side}
            want = ref.levels.get((loc, side), {})
            assert got == want, (loc, side)
            prices = [r["price"] for r in depth if r["side"] == side]
            assert prices == sorted(prices, reverse=(side == "B")), "levels best first"
            assert all(r["shares"] >= 0 for r in depth)
    # level totals equal the sum of their orders, order by order
    sums = collections.Counter()
    for oref, (loc, side, price, shares) in ref.orders_live.items():
        assert eng.order_shares(oref) == shares
        sums[(loc, side, price)] += shares
    for (loc, side), lv in ref.levels.items():
        for price, (total, _) in lv.items():
            assert total == sums[(loc, side, price)]


@SETTINGS
@given(book_ops())
def test_book_matches_model_and_invariants(ops):
    eng, ref = core.Engine(), RefEngine(core.EngineConfig().to_dict())
    eng.feed_packet(mold_packet(SESSION, 1, ops))
    for seq, m in enumerate(ops, 1):
        ref.on_message(m, seq)
    _check_book(eng, ref)
    deleted = [struct.unpack_from(">Q", m, 11)[0] for m in ops if m[:1] == b"D"]
    for d in deleted[-3:]:
        if d not in ref.orders_live:
            assert eng.order_shares(d) is None
    # the orders the strategy sent equal the model's
    got = [{k: o[k] for k in ("trigger_seq", "side", "shares", "stock", "price")}
           for o in ouch_orders(eng.ouch())]
    assert got == ref.orders


def test_full_book_is_counted_not_corrupted():
    eng = core.Engine(order_capacity=8, level_capacity=3)
    ops = [hdr("A", 1, 0, i) + struct.pack(">QcI8sI", i + 1, b"B", 10, b"SYM".ljust(8), 100 * (1 + i % 5))
           for i in range(20)]
    eng.feed_packet(mold_packet(SESSION, 1, ops))
    c = eng.counters()["book"]
    assert c["full_levels"] > 0 and c["adds"] + c["full_levels"] + c["full_orders"] == 20
    depth = eng.depth(1, 10).to_pylist()
    assert len(depth) == 3 and sum(r["orders"] for r in depth) == c["live_orders"] == c["adds"]
    assert sum(r["shares"] for r in depth) == 10 * c["adds"]
    # deleting everything frees the memory: adds work again
    dels = [hdr("D", 1, 0, 0) + struct.pack(">Q", i + 1) for i in range(20)]
    eng.feed_packet(mold_packet(SESSION, 21, dels))
    assert eng.counters()["book"]["live_orders"] == 0 and eng.depth(1).num_rows == 0


# ----------------------------------------------------------------------------- risk
@st.composite
def feed(draw):
    """A random but plausible book feed on 2 symbols, timestamps increasing."""
    msgs, ts, live = [], 0, []
    for i in range(draw(st.integers(10, 250))):
        ts += draw(st.integers(0, 300_000_000))
        loc = draw(st.integers(1, 2))
        if live and draw(st.booleans()):
            ref = live.pop(draw(st.integers(0, len(live) - 1)))
            kind = draw(st.sampled_from("EXD"))
            body = {"E": struct.pack(">QIQ", ref, draw(st.integers(1, 300)), i),
                    "X": struct.pack(">QI", ref, draw(st.integers(1, 300))),
                    "D": struct.pack(">Q", ref)}[kind]
            msgs.append(hdr(kind, loc, 0, ts) + body)
        else:
            ref = 1000 + i
            live.append(ref)
            side = draw(st.sampled_from([b"B", b"S"]))
            px = 10_000 + draw(st.integers(-50, 50)) * 100
            msgs.append(hdr("A", loc, 0, ts) + struct.pack(
                ">QcI8sI", ref, side, draw(st.integers(1, 2000)), (b"AAA" if loc == 1 else b"BBB").ljust(8), px))
    return msgs


@SETTINGS
@given(feed(), st.integers(1, 400), st.integers(0, 800), st.integers(1, 5), st.integers(0, 300))
def test_random_feeds_never_break_a_risk_limit(msgs, order_shares, max_pos, rate, band):
    cfg = core.EngineConfig(
        strategy=core.StrategyConfig(order_shares=order_shares, imbalance_num=2),
        risk=core.RiskConfig(max_order_shares=300, max_position=max_pos, max_orders_per_sec=rate,
                             price_band_bps=band, max_notional=50 * 10_000 * 1000))
    eng = core.Engine(cfg)
    eng.feed_packet(mold_packet(SESSION, 1, msgs))
    orders = ouch_orders(eng.ouch())
    ts_of = {seq: int.from_bytes(m[5:11], "big") for seq, m in enumerate(msgs, 1)}
    pos, notional, times = collections.Counter(), collections.Counter(), []
    for o in orders:
        assert o["shares"] <= 300
        pos[o["stock"]] += o["shares"] if o["side"] == "B" else -o["shares"]
        notional[o["stock"]] += o["shares"] * o["price"]
        assert max_pos == 0 or abs(pos[o["stock"]]) <= max_pos
        assert notional[o["stock"]] <= 50 * 10_000 * 1000
        times.append(ts_of[o["trigger_seq"]])
    for i in range(len(times)):
        in_window = [t for t in times[: i + 1] if t > times[i] - 1_000_000_000]
        assert len(in_window) <= rate
    c = eng.counters()["risk"]
    assert c["accepted"] == len(orders)
    # and the independent model agrees on every decision
    ref = RefEngine(cfg.to_dict())
    for seq, m in enumerate(msgs, 1):
        ref.on_message(m, seq)
    assert [o["trigger_seq"] for o in orders] == [o["trigger_seq"] for o in ref.orders]
    assert {k[9:]: v for k, v in c.items() if k.startswith("rejected_") and v} == dict(ref.rejected)


def test_kill_switch_stops_everything():
    from itch_ref import RITCH, iter_framed
    cfg = core.EngineConfig(risk=core.RiskConfig(kill=True))
    res = core.golden(RITCH, cfg)
    assert res.orders.num_rows == 0
    assert res.counters["risk"]["rejected_kill"] == res.counters["strategy"]["signals"] > 0
    eng = core.Engine()
    msgs = [m for _, m in iter_framed(RITCH.read_bytes())]
    eng.feed_packet(mold_packet(b"HFTLAB0001", 1, msgs[:800]))
    n = eng.counters()["orders"]
    eng.kill()
    eng.feed_packet(mold_packet(b"HFTLAB0001", 801, msgs[800:]))
    c = eng.counters()
    assert c["orders"] == n and c["risk"]["rejected_kill"] > 0


# ----------------------------------------------------------------------------- malformed
def test_malformed_datagrams_are_counted():
    eng = core.Engine()
    good = hdr("S", 0, 0, 1) + b"O"
    cases = [
        b"",                                            # empty
        b"\x00" * 19,                                   # short header
        mold_packet(SESSION, 1, [good])[:-3],           # truncated block
        mold_packet(SESSION, 1, [good], count=65000),   # huge count, one block
        mold_packet(SESSION, 1, [good], count=2),       # count beyond the blocks
    ]
    for c in cases:
        assert eng.feed_packet(c) < 0
    c = eng.counters()
    assert c["mold"]["malformed"] == len(cases) and c["itch"]["messages"] == 0
    # wrong lengths and unknown types inside a valid packet: counted and skipped
    bad = [good[:-1], good + b"X", b"z" + good[1:], b"", hdr("A", 1, 0, 0) + b"\x00" * 10]
    eng.feed_packet(mold_packet(SESSION, 1, bad + [good]))
    c = eng.counters()["itch"]
    assert (c["messages"], c["bad_length"], c["unknown_type"], c["empty"]) == (1, 3, 1, 1)


def test_random_bytes_never_crash():
    rng = random.Random(1234)
    eng = core.Engine()
    for i in range(3000):
        n = rng.randrange(0, 300)
        blob = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 3 == 0 and n >= 20:  # a plausible header over random blocks
            blob = SESSION + struct.pack(">QH", i, rng.randrange(0, 8)) + blob[20:]
        eng.feed_packet(blob)
    c = eng.counters()
    assert c["mold"]["malformed"] > 0 and c["mold"]["packets"] > 0


def _walk_frames(data: bytes):
    """NASDAQ file framing, restated: a non-zero 2-byte prefix is the length;
    a zero prefix means the length the type implies, and an unknown type
    there cannot be resynchronised; a message running past the end is
    truncated. Returns (frames, error, offset of the frame in error)."""
    off, frames = 0, []
    while off < len(data):
        if len(data) - off < 2:
            return frames, "truncated", off
        (n,) = struct.unpack_from(">H", data, off)
        if n == 0:
            if len(data) - off == 2:
                return frames, "truncated", off
            n = LENGTHS.get(chr(data[off + 2]), 0)
            if n == 0:
                return frames, "cannot be resynchronised", off
        if n > len(data) - off - 2:
            return frames, "truncated", off
        frames.append((off, data[off + 2: off + 2 + n]))
        off += 2 + n
    return frames, None, off


def _random_framed(rng: random.Random, chunks: int) -> bytes:
    """Frames with random contents: right-length messages (real or zero
    prefix), wrong lengths, unknown types, random prefixes over random bytes."""
    out = bytearray()
    types = sorted(LENGTHS)
    for _ in range(chunks):
        kind = rng.randrange(5)
        t = rng.choice(types)
        if kind <= 1:
            n, prefix = LENGTHS[t], rng.choice([0, LENGTHS[t]])
        elif kind == 2:
            n = max(1, LENGTHS[t] + rng.choice([-3, -1, 1, 5]))
            prefix = n
        elif kind == 3:
            t, n = rng.choice("abcdgZz0~"), rng.randrange(1, 60)
            prefix = n
        else:
            n = rng.randrange(1, 60)
            out += struct.pack(">H", n) + bytes(rng.getrandbits(8) for _ in range(n))
            continue
        out += struct.pack(">H", prefix) + t.encode() + bytes(rng.getrandbits(8) for _ in range(n - 1))
    return bytes(out)


@pytest.mark.parametrize("seed", range(8))
def test_random_itch_buffers_decode_or_raise(seed):
    """Random frames read as a framed ITCH buffer decode to every frame,
    each counted as the spec says (a message, a bad length or an unknown
    type); the same with random bytes after them raises DataError at exactly
    the offset where the framing breaks, naming why."""
    from hftlab.errors import DataError
    rng = random.Random(seed)
    data = _random_framed(rng, 400)
    if seed % 2:
        data += bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
    frames, why, at = _walk_frames(data)
    if seed % 2:
        assert why is not None, "the random tail happened to frame exactly; pick another seed"
        with pytest.raises(DataError) as info:
            core.decode_itch(data, counters={})
        assert info.value.offset == at and why in str(info.value), (at, str(info.value))
        return
    assert why is None and len(frames) == 400
    c: dict = {}
    rows = core.decode_itch(data, counters=c).to_pylist()
    kinds = collections.Counter(
        "unknown_type" if chr(m[0]) not in LENGTHS else
        "messages" if len(m) == LENGTHS[chr(m[0])] else "bad_length" for _, m in frames)
    assert min(kinds["messages"], kinds["bad_length"], kinds["unknown_type"]) > 0
    assert {k: c[k] for k in ("messages", "bad_length", "unknown_type", "empty")} == \
        {"messages": kinds["messages"], "bad_length": kinds["bad_length"],
         "unknown_type": kinds["unknown_type"], "empty": 0}
    good = [(off, m) for off, m in frames if LENGTHS.get(chr(m[0])) == len(m)]
    assert [r["file_offset"] for r in rows] == [off for off, _ in good]
    assert [r["msg_type"] for r in rows] == [chr(m[0]) for _, m in good]


def test_trigger_beyond_token_range_never_trades():
    """A token holds 48 bits of sequence number: a larger trigger must not
    produce an order whose token points at another tick."""
    msgs = [hdr("R", 1, 0, 0) + b"AAPL    " + b"\0" * 20,
            hdr("A", 1, 0, 1) + struct.pack(">QcI8sI", 1, b"B", 100, b"AAPL    ", 10000),
            hdr("A", 1, 0, 2) + struct.pack(">QcI8sI", 2, b"S", 100, b"AAPL    ", 9990)]
    for first, want_orders in ((1, 1), ((1 << 48) + 1, 0)):
        eng = core.Engine()
        eng.feed_packet(mold_packet(SESSION, 1, []))
        eng.feed_packet(mold_packet(SESSION, first, msgs))
        c = eng.counters()
        assert c["orders"] == want_orders
        assert c["seq_too_large"] == (0 if want_orders else 2)
    # One message per datagram, across the limit: the in-sequence shortcut
    # (engine.h) takes the last number a token carries and then hands the
    # session to mold_accept, so 2^48 and beyond still never trade.
    for first, want_orders, too_large in (((1 << 48) - 3, 1, 0), ((1 << 48) - 2, 0, 1),
                                          ((1 << 48) - 1, 0, 2)):
        eng = core.Engine()
        eng.feed_packet(mold_packet(SESSION, first, []))  # heartbeat: next is `first`
        for k, msg in enumerate(msgs):
            eng.feed_packet(mold_packet(SESSION, first + k, [msg]))
        c = eng.counters()
        assert (c["orders"], c["seq_too_large"]) == (want_orders, too_large), (first, c)
