"""Keyframe-based counter timestamps (Arista 7150, ExaLINK Fusion / Nexus 3550).

No tool here decodes these formats (tshark has no dissector for them), so the
references are
* the devices' own keyframes: before every keyframe a probe frame stamped with
  that keyframe's counter is inserted; decoding it from the *previous*
  keyframes must give the UTC the keyframe states (an out-of-sample check of
  packing, wrap, position and rate);
* the capture clock: the Arista sample host is PTP-synchronised with the
  switch, so decoded times equal capture times within 1 ms; Fusion samples
  keep a constant capture-clock offset (data frames within 2 ms of the offset
  of the keyframe before them);
* the formats the origin READMEs state: 350 MHz counters, keyframes each
  second (Fusion) or twice a second (the Arista config: ``rate 2``).
Synthetic frames (built here) cover wraps, gaps, truncation and streaming.
The device samples are the repository's captures/trailers (captures/README.md).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from hftlab import capture

from repo_paths import TRAILERS as DATA

ARISTA = ["ptpKFbeforeFCS.pcap", "ptpKFreplaceFCS.pcap"]
FUSION = ["exa.mode.append-compat.pcap", "exa.mode.append.pcap", "exa.mode.fcs-compat.pcap",
          "exa.mode.fcs.pcap", "exnic-fcsu.pcap", "pingout.pcap"]
SAMPLES = [("arista-7150-keyframes", f, "arista7150") for f in ARISTA] + \
          [("cisco-n3550-exablaze", f, "fusion") for f in FUSION]
NS = 10**9


# ------------------------------------------------------------------ tiny pcap helpers (independent of hftlab)
def read_pcap(path: Path) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """(file header, [(ts_ns, origlen, frame)]) of a little-endian pcap."""
    b = path.read_bytes()
    nano = struct.unpack("<I", b[:4])[0] == 0xA1B23C4D
    pos, out = 24, []
    while pos + 16 <= len(b):
        sec, frac, cl, ol = struct.unpack("<IIII", b[pos:pos + 16])
        out.append((sec * NS + frac * (1 if nano else 1000), ol, b[pos + 16:pos + 16 + cl]))
        pos += 16 + cl
    return b[:24], out


def write_pcap(path: Path, frames: list[tuple[int, bytes] | tuple[int, bytes, int]]) -> Path:
    """Nanosecond pcap, Ethernet; a frame may give its origlen (truncation)."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    for fr in frames:
        ts, data = fr[0], fr[1]
        orig = fr[2] if len(fr) > 2 else len(data)
        out.append(struct.pack("<IIII", ts // NS, ts % NS, len(data), orig) + data)
    path.write_bytes(b"".join(out))
    return path


def keyframe_fields(d: bytes) -> dict | None:
    """UTC / counter / encoding of a keyframe frame, from the documented layouts."""
    if d[12:14] == b"\x88\xb5":
        body = d[14:54]
    elif d[12:14] == b"\x08\x00" and d[23] == 253:
        body = d[34:14 + struct.unpack(">H", d[16:18])[0]]
    else:
        return None
    if len(body) == 40:                       # Fusion: magic, version, utc, counter, freq, last_sync
        utc, counter, freq = struct.unpack(">QQQ", body[8:32])
        return {"utc": utc, "counter": counter, "packed": False, "freq": freq}
    counter, utc = struct.unpack(">QQ", body[:16])   # Arista layout (46 or 62 bytes)
    return {"utc": utc, "counter": counter, "packed": True, "freq": 350_000_000,
            "device": struct.unpack(">H", body[-6:-4])[0]}


def stamp(ticks: int, packed: bool) -> int:
    """Counter -> the 4 stamp bytes' value (Arista: 31 bits, bit 7 left out)."""
    if packed:
        t = ticks & 0x7FFFFFFF
        return ((t >> 7) << 8) | (t & 0x7F)
    return ticks & 0xFFFFFFFF


def fcs(frame: bytes) -> bytes:
    return zlib.crc32(frame).to_bytes(4, "little")


def has_fcs(frame: bytes) -> bool:
    return fcs(frame[:-4]) == frame[-4:]


def probe(counter: int, packed: bool, fcs_kept: bool) -> bytes:
    body = b"\xff" * 6 + b"\x02" + b"\x00" * 5 + b"\x88\xb6" + b"probe".ljust(46, b"\0")
    body += struct.pack(">I", stamp(counter, packed))
    return body + fcs(body) if fcs_kept else body


def data_rows(t):
    kinds = t.column("trailer_kind").to_pylist()
    return [i for i, k in enumerate(kinds) if not (k or "").endswith("_keyframe")]


# ------------------------------------------------------------------ device samples
@pytest.mark.parametrize("folder,name,mode", SAMPLES)
def test_samples_decode_and_auto_agrees(folder: str, name: str, mode: str) -> None:
    path = DATA / folder / name
    _, frames = read_pcap(path)
    kfs = [keyframe_fields(d) for _, _, d in frames]
    t = capture.read(path, trailer=mode).packets
    kinds = t.column("trailer_kind").to_pylist()
    got = t.column("trailer_ts_ns").to_pylist()
    cap = t.column("ts_ns").to_pylist()
    # every keyframe is recognised and carries its stated UTC
    for i, kf in enumerate(kfs):
        if kf is not None:
            assert kinds[i] == f"{mode}_keyframe" and got[i] == kf["utc"]
            assert kf["freq"] == 350_000_000                    # README: 350 MHz counter
    first_kf = next(i for i, kf in enumerate(kfs) if kf is not None)
    rows = data_rows(t)
    assert rows, "no data frames"
    decoded = [i for i in rows if got[i] is not None]
    # keyframe-less leading frames: null; every frame after the first keyframe: decoded
    assert all(got[i] is None and kinds[i] is None for i in rows if i < first_kf)
    assert decoded == [i for i in rows if i > first_kf]
    assert all(kinds[i] == mode for i in decoded)
    values = [got[i] for i in decoded]
    assert values == sorted(values)                                # monotonic
    if mode == "arista7150":
        # the capturing host and the switch share PTP time: equal within 1 ms
        assert max(abs(got[i] - cap[i]) for i in decoded) < 10**6
        assert set(t.column("trailer_device").to_pylist()[i] for i in decoded) == {888}
    else:
        # constant capture-clock offset: within 2 ms after that of the last keyframe
        last = None
        for i in range(len(kinds)):
            if kfs[i] is not None:
                last = got[i] - cap[i]
            elif got[i] is not None:
                assert 0 <= (got[i] - cap[i]) - last < 2 * 10**6
    assert t.column("trailer_port").null_count == t.num_rows
    # auto finds the same (keyframes that show their stamp slot are unambiguous)
    auto = capture.read(path, trailer="auto").packets
    assert auto.column("trailer_ts_ns").to_pylist() == got
    assert auto.column("trailer_kind").to_pylist() == kinds


@pytest.mark.parametrize("folder,name,mode", SAMPLES)
def test_samples_predict_each_keyframe(tmp_path: Path, folder: str, name: str, mode: str) -> None:
    """A probe stamped with keyframe k's counter, put just before keyframe k,
    decodes (from keyframes < k) to keyframe k's UTC."""
    _, frames = read_pcap(DATA / folder / name)
    out, want, step = [], [], []
    prev = None
    for ts, orig, d in frames:
        kf = keyframe_fields(d)
        if kf is not None:
            out.append((ts, probe(kf["counter"], kf["packed"], has_fcs(d))))
            want.append(kf["utc"])
            # a UTC step of the device clock (the Arista sample has two) cannot be predicted
            step.append(prev is not None and abs((kf["utc"] - prev[1]) - (ts - prev[0])) > NS // 2)
            prev = (ts, kf["utc"])
        out.append((ts, d, orig))
        want.append(None)
        step.append(False)
    t = capture.read(write_pcap(tmp_path / "probed.pcap", out), trailer=mode).packets
    got = t.column("trailer_ts_ns").to_pylist()
    idx = [i for i, w in enumerate(want) if w is not None]
    assert got[idx[0]] is None                        # nothing to decode it from yet
    err = np.array([abs(got[i] - want[i]) for i in idx[1:] if not step[i]])
    assert np.median(err) < 1000                      # keyframe jitter is a few hundred ns
    assert np.percentile(err, 90) < 20_000
    # the second keyframe is predicted with the nominal rate (Fusion clocks run up
    # to ~520 ppm off); from the third on, with the rate measured between keyframes
    assert err[1:].max() < 20_000 if len(err) > 1 else True
    assert err.max() < 10**6


def test_samples_streaming_equals_whole() -> None:
    path = DATA / "cisco-n3550-exablaze" / "pingout.pcap"
    whole = capture.read(path, trailer="fusion").packets
    parts = [b.packets for b in capture.iter_batches(path, trailer="fusion", batch_size=7)]
    assert sum(p.num_rows for p in parts) == whole.num_rows
    for col in ("trailer_ts_ns", "trailer_kind", "trailer_device"):
        assert [v for p in parts for v in p.column(col).to_pylist()] == whole.column(col).to_pylist()


def test_samples_untouched_without_counter_mode() -> None:
    path = DATA / "arista-7150-keyframes" / "ptpKFreplaceFCS.pcap"
    for mode in (None, "metamako", "exablaze"):
        assert capture.read(path, trailer=mode).packets.column("trailer_ts_ns").null_count == 172
    # Arista keyframes are not Fusion ones and vice versa
    fus = capture.read(DATA / "cisco-n3550-exablaze" / "exa.mode.fcs.pcap", trailer="arista7150").packets
    assert fus.column("trailer_ts_ns").null_count == fus.num_rows


# ------------------------------------------------------------------ synthetic frames
T0 = 1_700_000_000 * NS
ARISTA_TICK = 20 / 7


def ip_keyframe(counter: int, utc: int, *, num: int = 1, den: int = 1, device: int = 7,
                src: bytes = bytes([1, 2, 3, 4]), dst: bytes = bytes([111] * 4), slot: str = "replace") -> bytes:
    body = struct.pack(">7QHHBB", counter, utc, 0, num, den, counter, 0, device, 37, 2, 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 253, 0, src, dst)
    frame = b"\xab\xcd" * 3 + b"\x00\x1c\x73" + b"\x00\x00\x01" + b"\x08\x00" + ip + body
    if slot == "none":
        return frame
    frame += b"\0\0\0\0"
    return frame + fcs(frame) if slot == "before" else frame


def exa_keyframe(counter: int, utc: int, freq: int = 350_000_000, slot: str = "replace") -> bytes:
    body = b"EXKF\x01\0\0\0" + struct.pack(">QQQQ", utc, counter, freq, counter)
    frame = (b"\xff" * 6 + b"\x64\x3f\x5f\x01\x02\x03" + b"\x88\xb5" + body).ljust(60, b"\0") + b"\0\0\0\0"
    return frame + fcs(frame) if slot == "before" else frame


def frame(ticks: int, packed: bool, slot: str = "replace", size: int = 64) -> bytes:
    body = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(range(size - 18))
    body += struct.pack(">I", stamp(ticks, packed))
    return body + fcs(body) if slot == "before" else body


def test_arista_wrap_negative_delta_leading_null_and_truncation(tmp_path: Path) -> None:
    k0 = 2**31 - 1000                  # keyframe just before the 31-bit wrap
    k1 = k0 + 350_000_000              # one second later (wrapped)
    utc0 = T0 + 123
    frames = [
        (T0 - 10**6, frame(k0 - 50, True, "before")),              # before any keyframe: null
        (T0, ip_keyframe(k0, utc0, slot="before")),
        (T0 + 1000, frame(k0 - 7, True, "before")),                # stamped before the keyframe
        (T0 + 2000, frame(k0 + 1000, True, "before")),             # across the wrap
        (T0 + 3000, frame(k0 + 1000, True, "before")[:40], 68),    # truncated: stamp lost
        (T0 + NS, ip_keyframe(k1, utc0 + NS, slot="before")),
        (T0 + NS + 500, frame(k1 + 7_000_000, True, "before")),    # 20 ms after
    ]
    t = capture.read(write_pcap(tmp_path / "a.pcap", frames), trailer="arista7150").packets
    got = t.column("trailer_ts_ns").to_pylist()
    tick = NS / (k1 - k0)      # measured rate == nominal here
    assert got[0] is None and got[4] is None
    assert got[1] == utc0 and got[5] == utc0 + NS
    assert got[2] == utc0 - round(7 * ARISTA_TICK)
    assert got[3] == utc0 + round(1000 * ARISTA_TICK)
    assert got[6] == utc0 + NS + round(7_000_000 * tick)
    assert t.column("trailer_kind").to_pylist() == [None, "arista7150_keyframe", "arista7150", "arista7150",
                                                    None, "arista7150_keyframe", "arista7150"]
    assert t.column("trailer_device").to_pylist() == [None, 7, 7, 7, None, 7, 7]


def test_arista_skew_and_replace_fcs(tmp_path: Path) -> None:
    k0, utc0 = 5_000_000, T0
    frames = [(T0, ip_keyframe(k0, utc0, num=11, den=10)),
              (T0 + 10**8, frame(k0 + 31_818_182, True))]
    got = capture.read(write_pcap(tmp_path / "s.pcap", frames), trailer="arista7150").packets
    assert got.column("trailer_ts_ns").to_pylist() == [utc0, utc0 + round(31_818_182 * ARISTA_TICK * 1.1)]


def test_fusion_wrap_gap_and_age(tmp_path: Path) -> None:
    k0 = 2**32 - 35_000_000            # 0.1 s before the 32-bit wrap
    utc0 = T0 + 5
    frames = [
        (T0, exa_keyframe(k0, utc0, slot="before")),
        (T0 + 2 * 10**8, frame(k0 + 70_000_000, False, "before")),           # wrapped, 0.2 s
        (T0 + 9 * NS, frame(k0 + 9 * 350_000_000 + 3, False, "before")),     # keyframes missing 9 s (> half wrap)
        (T0 + 11 * NS, frame(k0 + 11 * 350_000_000, False, "before")),       # older than 10 s: null
    ]
    t = capture.read(write_pcap(tmp_path / "f.pcap", frames), trailer="fusion").packets
    got = t.column("trailer_ts_ns").to_pylist()
    assert got[0] == utc0
    assert got[1] == utc0 + 2 * 10**8
    assert got[2] == utc0 + 9 * NS + round(3 * NS / 350_000_000)
    assert got[3] is None
    assert t.column("trailer_kind").to_pylist() == ["fusion_keyframe", "fusion", "fusion", None]
    assert t.column("trailer_device").null_count == 4      # Fusion keyframes name no device


def test_fusion_measured_rate(tmp_path: Path) -> None:
    """A counter 500 ppm slow: the second keyframe teaches the rate."""
    f = 350_000_000 * (1 - 500e-6)
    frames = [(T0, exa_keyframe(10_000, T0)), (T0 + NS, exa_keyframe(10_000 + round(f), T0 + NS)),
              (T0 + NS + NS // 2, frame(10_000 + round(1.5 * f), False))]
    got = capture.read(write_pcap(tmp_path / "r.pcap", frames), trailer="fusion").packets
    assert abs(got.column("trailer_ts_ns")[2].as_py() - (T0 + NS + NS // 2)) <= 2


def test_fusion_compat_keyframe_and_auto_rules(tmp_path: Path) -> None:
    k0 = 1_000_000
    compat = ip_keyframe(k0, T0, device=0, src=bytes(4), dst=b"\xff" * 4, slot="before")
    frames = [(T0, compat), (T0 + 10**6, frame(k0 + 350_000, True, "before"))]
    for mode in ("fusion", "auto"):
        t = capture.read(write_pcap(tmp_path / "c.pcap", frames), trailer=mode).packets
        assert t.column("trailer_ts_ns").to_pylist() == [T0, T0 + 10**6]
        assert t.column("trailer_kind").to_pylist() == ["fusion_keyframe", "fusion"]
    # auto: a keyframe whose own frame shows no stamp slot enables nothing ...
    bare = [(T0, ip_keyframe(k0, T0, slot="none")), (T0 + 10**6, frame(k0 + 350_000, True))]
    t = capture.read(write_pcap(tmp_path / "n.pcap", bare), trailer="auto").packets
    assert t.column("trailer_ts_ns").null_count == 2
    assert capture.read(tmp_path / "n.pcap", trailer="arista7150").packets.column("trailer_ts_ns")[1].as_py() \
        is not None                                    # (asked for explicitly, it is decoded)
    # ... nor does one whose UTC is far from the capture clock, nor an Arista stamp with bit 7 set
    far = [(T0, ip_keyframe(k0, T0 - 30 * 86400 * NS)), (T0 + 10**6, frame(k0 + 350_000, True))]
    t = capture.read(write_pcap(tmp_path / "far.pcap", far), trailer="auto").packets
    assert t.column("trailer_ts_ns").null_count == 2
    odd = [(T0, ip_keyframe(k0, T0)), (T0 + 10**6, frame(k0 + 350_000, True)[:-4] + b"\x00\x00\x00\x80")]
    t = capture.read(write_pcap(tmp_path / "odd.pcap", odd), trailer="auto").packets
    assert t.column("trailer_ts_ns").to_pylist() == [T0, None]


def test_keyframe_state_per_interface(tmp_path: Path) -> None:
    """pcapng: a keyframe on one interface does not decode frames of another."""
    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", kind, n) + body + struct.pack("<I", n)

    def epb(iface: int, ts: int, data: bytes) -> bytes:
        us = ts // 1000
        return block(6, struct.pack("<IIIII", iface, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data)

    k0 = 1_000_000
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    data = shb + idb + idb + epb(0, T0, exa_keyframe(k0, T0)) + \
        epb(1, T0 + 1000, frame(k0 + 350, False)) + epb(0, T0 + 2000, frame(k0 + 700, False))
    path = tmp_path / "two.pcapng"
    path.write_bytes(data)
    got = capture.read(path, trailer="fusion").packets.column("trailer_ts_ns").to_pylist()
    assert got == [T0, None, T0 + 2000]


def test_trailer_modes_listed() -> None:
    assert {"arista7150", "fusion"} <= set(capture.TRAILER_MODES)
    assert {"arista7150", "arista7150_keyframe", "fusion", "fusion_keyframe"} <= set(capture.TRAILER_KINDS)
    from hftlab.capture import _decode, _keyframes, _table, _trailers
    assert _keyframes.F_TRAILER == _decode.F_TRAILER and _keyframes.TS_NULL == _table.TS_NULL
    for name in ("arista7150", "arista7150_keyframe", "fusion", "fusion_keyframe"):
        assert _trailers.TRAILER_KINDS.index(name) == getattr(_keyframes, "KIND_" + name.upper().replace(
            "_KEYFRAME", "_KF"))
    assert _trailers.TRAILER_MODES["arista7150"] == _keyframes.MODE_ARISTA7150
    assert _trailers.TRAILER_MODES["fusion"] == _keyframes.MODE_FUSION
    assert _trailers.TRAILER_MODES["auto"] == _keyframes.MODE_AUTO
