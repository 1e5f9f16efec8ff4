"""hftlab.model.synth: the synthetic ITCH 5.0 feed, checked by an independent reader.

The reader below is written from the ITCH 5.0 specification with the struct
module and shares nothing with hftlab.model.synth but the file it reads. Replaying
its messages against a plain dict of live orders checks the feed is one an
exchange could have sent.
"""

from __future__ import annotations

import hashlib
import statistics
import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftlab.errors import ConfigError
from hftlab.model.synth import DEFAULT_SYMBOLS, generate

# ITCH 5.0 layouts after the 11-byte header (type, locate, tracking, 48-bit ts),
# big-endian; lengths include the type byte.
SPEC = {
    "S": (12, "c"),
    "R": (39, "8scc I cc2s ccccc I c".replace(" ", "")),
    "A": (36, "Qc I 8s I".replace(" ", "")),
    "F": (40, "Qc I 8s I 4s".replace(" ", "")),
    "E": (31, "QIQ"),
    "C": (36, "QIQcI"),
    "X": (23, "QI"),
    "D": (19, "Q"),
    "U": (35, "QQII"),
    "P": (44, "QcI8sIQ"),
}
for _t, (_n, _fmt) in SPEC.items():
    assert 11 + struct.calcsize(">" + _fmt) == _n, _t
DAY_NS = 86_400 * 10**9


def read_itch(path: Path) -> list[tuple]:
    """(type, locate, tracking, timestamp, *fields) per message of a NASDAQ-framed file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">H", data, pos)
        kind = chr(data[pos + 2])
        assert kind in SPEC, f"unknown type {kind!r} at byte {pos}"
        assert length == SPEC[kind][0], f"{kind} length {length} at byte {pos}"
        body = data[pos + 2: pos + 2 + length]
        assert len(body) == length, f"truncated {kind} at byte {pos}"
        locate, tracking, ts_hi, ts_lo = struct.unpack_from(">HHHI", body, 1)
        fields = struct.unpack_from(">" + SPEC[kind][1], body, 11)
        out.append((kind, locate, tracking, (ts_hi << 32) | ts_lo, *fields))
        pos += 2 + length
    return out


def replay(msgs: list[tuple], symbols: tuple[str, ...]) -> dict[int, list]:
    """Apply the messages to a book of live orders, asserting every ITCH rule on the way.

    Returns the orders still live at the end: ref -> [locate, side, shares, price].
    """
    k = len(symbols)
    assert msgs[0][:1] == ("S",) and msgs[0][4] == b"O"
    assert [m[0] for m in msgs[1:k + 1]] == ["R"] * k
    assert [m[1] for m in msgs[1:k + 1]] == list(range(1, k + 1))
    assert [m[4].decode().rstrip() for m in msgs[1:k + 1]] == list(symbols)
    assert all(m[5:] == (b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N", b" ", b"1", b"N", 0, b"N")
               for m in msgs[1:k + 1])
    assert msgs[-1][0] == "S" and msgs[-1][4] == b"C"
    assert all(m[0] != "S" for m in msgs[k + 1:-1]) and all(m[0] != "R" for m in msgs[k + 1:])

    live: dict[int, list] = {}
    seen: set[int] = set()
    matches: list[int] = []
    last_ts = 0
    for kind, locate, tracking, ts, *f in msgs:
        assert tracking == 0
        assert last_ts <= ts < DAY_NS, "timestamps must not decrease"
        last_ts = ts
        if kind in "AF":
            ref, side, shares, stock, price = f[:5]
            assert ref not in seen, "order refs are unique"
            assert side in (b"B", b"S") and shares > 0 and price > 0
            assert stock.decode().rstrip() == symbols[locate - 1]
            seen.add(ref)
            live[ref] = [locate, side, shares, price]
        elif kind in "ECXD":
            ref = f[0]
            assert ref in live, f"{kind} names order {ref}, which is not live"
            assert live[ref][0] == locate
            if kind == "D":
                del live[ref]
                continue
            shares = f[1]
            assert 0 < shares <= live[ref][2]
            if kind == "X":
                assert shares < live[ref][2], "X is a partial cancel"
            if kind == "C":
                assert f[3] == b"Y" and f[4] > 0
            if kind in "EC":
                matches.append(f[2])
            live[ref][2] -= shares
            if live[ref][2] == 0:
                del live[ref]
        elif kind == "U":
            old, new, shares, price = f
            assert old in live and live[old][0] == locate
            assert new not in seen and shares > 0 and price > 0
            seen.add(new)
            live[new] = [locate, live.pop(old)[1], shares, price]
        elif kind == "P":
            ref, side, shares, stock, price, match = f
            assert ref == 0 and side in (b"B", b"S") and shares > 0 and price > 0
            assert stock.decode().rstrip() == symbols[locate - 1]
            matches.append(match)
    assert matches == sorted(set(matches)), "match numbers unique and increasing"
    return live


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> tuple[Path, dict[str, int], list[tuple]]:
    path = tmp_path_factory.mktemp("synth") / "feed.itch"
    counts = generate(path, 30_000, seed=3)
    return path, counts, read_itch(path)


def test_counts_are_exact_and_match_the_file(feed):
    path, counts, msgs = feed
    assert list(counts) == list("SRAFECXDUP")
    assert sum(counts.values()) == len(msgs) == 30_000
    for kind, n in counts.items():
        assert n == sum(m[0] == kind for m in msgs), kind
    assert counts["S"] == 2 and counts["R"] == len(DEFAULT_SYMBOLS)
    assert path.stat().st_size == sum(2 + SPEC[m[0]][0] for m in msgs)


def test_every_message_type_occurs_in_a_realistic_mix(feed):
    _, counts, _ = feed
    body = sum(counts.values()) - counts["S"] - counts["R"]
    assert all(counts[t] > 0 for t in "AFECXDUP")
    # adds and deletes dominate, as on NASDAQ; executions are a minority
    assert counts["A"] + counts["F"] > 0.3 * body and counts["D"] > 0.25 * body
    assert counts["E"] + counts["C"] + counts["P"] < 0.2 * body


def test_feed_is_internally_consistent(feed):
    _, _, msgs = feed
    live = replay(msgs, DEFAULT_SYMBOLS)
    assert all(o[2] > 0 for o in live.values())


def test_prices_are_whole_cents_near_a_mid(feed):
    _, _, msgs = feed
    adds = [m for m in msgs if m[0] in "AF"]
    assert all(m[8] % 100 == 0 for m in adds)
    for locate in range(1, len(DEFAULT_SYMBOLS) + 1):
        bids = [m[8] for m in adds if m[1] == locate and m[5] == b"B"]
        asks = [m[8] for m in adds if m[1] == locate and m[5] == b"S"]
        # no crossing required, but the typical bid is below the typical ask
        assert statistics.median(bids) < statistics.median(asks)


def test_book_never_crosses_and_the_price_moves(feed):
    _, _, msgs = feed
    book: dict[int, list] = {}
    locates = range(1, len(DEFAULT_SYMBOLS) + 1)
    levels = {(loc, side): Counter() for loc in locates for side in (b"B", b"S")}
    trades: dict[int, list[int]] = {loc: [] for loc in locates}

    def level(order, delta):
        counter = levels[(order[0], order[1])]
        counter[order[3]] += delta
        if not counter[order[3]]:
            del counter[order[3]]

    for kind, locate, _, _, *f in msgs:
        if kind in "AF":
            book[f[0]] = [locate, f[1], f[2], f[4]]
            level(book[f[0]], 1)
        elif kind in "ECX" and book[f[0]][2] > f[1]:
            book[f[0]][2] -= f[1]
        elif kind in "ECXD":
            level(book.pop(f[0]), -1)
        elif kind == "U":
            old = book.pop(f[0])
            level(old, -1)
            book[f[1]] = [locate, old[1], f[2], f[3]]
            level(book[f[1]], 1)
        if kind in "CP":
            trades[locate].append(f[4])
        if kind in "AFU":  # only a new or moved quote can cross the book
            bids, asks = levels[(locate, b"B")], levels[(locate, b"S")]
            assert not bids or not asks or max(bids) < min(asks)
    assert len(set(trades[1])) > 5, "the most active symbol's price should move"


def test_arrivals_are_clustered(feed):
    _, _, msgs = feed
    gaps = [b[3] - a[3] for a, b in zip(msgs, msgs[1:])]
    # exponential gaps have a coefficient of variation of 1; a mix of regimes is above
    assert statistics.pstdev(gaps) / statistics.mean(gaps) > 1.3
    # and short gaps come in runs: after a short gap, another is far more likely
    short = [g < 2_000 for g in gaps]
    p_short = sum(short) / len(short)
    p_short_after_short = sum(a and b for a, b in zip(short, short[1:])) / sum(short[:-1])
    assert 0.1 < p_short < 0.9 and p_short_after_short > p_short + 0.3


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.itch", "b.itch", "c.itch"))
    assert generate(a, 5_000, seed=11) == generate(b, 5_000, seed=11)
    generate(c, 5_000, seed=12)
    assert sha256(a) == sha256(b) != sha256(c)


def test_output_does_not_depend_on_chunk_size(tmp_path, monkeypatch):
    import hftlab.model.synth as synth

    generate(tmp_path / "big.itch", 3_000, seed=5)
    monkeypatch.setattr(synth, "_CHUNK", 256)
    generate(tmp_path / "small.itch", 3_000, seed=5)
    assert sha256(tmp_path / "big.itch") == sha256(tmp_path / "small.itch")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**63),
    symbols=st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=8),
                     min_size=1, max_size=5, unique=True),
    extra=st.integers(0, 1_500),
)
def test_any_seed_and_symbols_give_a_consistent_feed(tmp_path, seed, symbols, extra):
    path = tmp_path / "h.itch"
    n = len(symbols) + 2 + extra
    counts = generate(path, n, seed=seed, symbols=tuple(symbols))
    msgs = read_itch(path)
    assert len(msgs) == sum(counts.values()) == n
    replay(msgs, tuple(symbols))


@pytest.mark.parametrize("kwargs", [
    {"n_messages": 9},                                   # fewer than S + 8 R + S
    {"n_messages": 100, "symbols": ()},
    {"n_messages": 100, "symbols": ("TOOLONGNAME",)},
    {"n_messages": 100, "symbols": ("A B",)},
    {"n_messages": 100, "symbols": ("AAPL", "AAPL")},
    {"n_messages": 100, "symbols": "AAPL"},
    {"n_messages": 100, "seed": -1},
    {"n_messages": 100, "framing": "moldudp64"},
])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        generate(tmp_path / "x.itch", **kwargs)
    assert not (tmp_path / "x.itch").exists()


def test_smallest_feed_is_open_directory_close(tmp_path):
    path = tmp_path / "min.itch"
    assert generate(path, 3, symbols=("ZZZ",))["A"] == 0
    msgs = read_itch(path)
    assert [m[0] for m in msgs] == ["S", "R", "S"]
    replay(msgs, ("ZZZ",))
