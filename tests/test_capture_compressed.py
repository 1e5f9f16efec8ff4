"""Compressed captures (issue 11, item 2): gzip, zstd and lz4 frame files made
by the real tools (`gzip`, `zstd`, `lz4`: `make setup` installs them; one
missing is a failure) read equal to the uncompressed file, whatever their
name; truncated and corrupt copies give a DataError naming the file and the
compressed byte position, and with ``partial=True`` exactly the packets
whose records were complete before the damage.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from hftlab import capture
from hftlab.capture import _compress as Z
from hftlab.errors import DataError

from repo_paths import CAPTURES as DATA

SOURCES = [DATA / "moldudp64" / "ritch-packed.pcap",                         # pcap, ITCH messages
           DATA / "pcapng-suite" / "output_be" / "difficult" / "test202.pcapng",   # 3 sections, mixed order
           DATA / "other" / "tcpdump-timestamps" / "timestamp_invalid_nano.pcap"]  # flagged timestamps
TOOLS = {"gzip": (["gzip", "-c"], ".gz"), "zstd": (["zstd", "-q", "-c"], ".zst"), "lz4": (["lz4", "-q", "-c"], ".lz4")}
DECOMPRESS = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-q", "-dc"], "lz4": ["lz4", "-q", "-dc"]}


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make setup` (scripts/setup-system.sh) installs it")
    return path


def compress(src: Path, kind: str, out: Path, *extra: str) -> Path:
    cmd, _ = TOOLS[kind]
    need_tool(cmd[0])
    out.write_bytes(subprocess.run(cmd + list(extra) + [str(src)], capture_output=True, check=True).stdout)
    return out


def tables(cap: capture.Capture) -> list[pa.Table]:
    return [cap.packets, cap.itch, cap.ouch, cap.ptp]


@pytest.mark.parametrize("kind", sorted(TOOLS))
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_compressed_reads_equal_uncompressed(tmp_path: Path, src: Path, kind: str) -> None:
    ref = capture.read(src)
    # named as if it were not compressed: detection is by magic bytes
    path = compress(src, kind, tmp_path / src.name)
    cap = capture.read(path)
    for a, b in zip(tables(cap), tables(ref)):
        assert a.equals(b)
    assert cap.metadata["compression"] == kind
    assert cap.metadata["size"] == path.stat().st_size
    assert cap.metadata["decompressed_size"] == src.stat().st_size
    assert cap.metadata["ts_errors"] == ref.metadata["ts_errors"]
    assert cap.metadata["interfaces"] == ref.metadata["interfaces"]


@pytest.mark.parametrize("kind", sorted(TOOLS))
def test_small_chunks_records_straddle_every_boundary(tmp_path: Path, monkeypatch, kind: str) -> None:
    """Decompressing 1000 bytes at a time puts records, blocks and SHBs across the
    mapping's growth points; batches of 7 split the packets; concatenated
    members/frames (two runs of the tool, cat-ed) are one stream."""
    monkeypatch.setattr(Z, "CHUNK", 1000)
    monkeypatch.setattr(Z, "READ", 333)
    for src in SOURCES[:2]:
        ref = capture.read(src, batch_size=7)
        path = compress(src, kind, tmp_path / (src.name + TOOLS[kind][1]))
        cap = capture.read(path, batch_size=7)
        assert cap.packets.equals(ref.packets) and cap.itch.equals(ref.itch)
    # two members: the file split in two at a record boundary, each part compressed alone
    src = SOURCES[0]
    data = src.read_bytes()
    cut = 24 + 16 + int.from_bytes(data[24 + 8:24 + 12], "little")      # after the first record
    (tmp_path / "p1").write_bytes(data[:cut])
    (tmp_path / "p2").write_bytes(data[cut:])
    both = tmp_path / "two"
    both.write_bytes(compress(tmp_path / "p1", kind, tmp_path / "c1").read_bytes()
                     + compress(tmp_path / "p2", kind, tmp_path / "c2").read_bytes())
    assert capture.read(both, batch_size=7).packets.equals(capture.read(src).packets)


def tool_prefix_len(path: Path, kind: str) -> int:
    """How many bytes the tool itself decompresses from a damaged file."""
    r = subprocess.run(DECOMPRESS[kind] + [str(path)], capture_output=True)
    assert r.returncode != 0
    return len(r.stdout)


def record_ends(src: Path) -> list[int]:
    """File offset where each packet's record ends (uncompressed pcap)."""
    data, pos, ends = src.read_bytes(), 24, []
    while pos < len(data):
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
        ends.append(pos)
    return ends


def longer_pcap(tmp_path: Path, n: int = 3000) -> Path:
    """A ~2 MB microsecond pcap of Ethernet/IPv4/UDP frames with half-random payloads:
    compressed, it still spans many gzip/zstd/lz4 blocks (lz4 -B4: 64 KiB)."""
    import random
    import struct
    rnd = random.Random(11)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(n):
        payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(50, 600))) + bytes(300)
        udp = struct.pack(">HHHH", 40000, 30000 + i % 7, 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp
        frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", 1_700_000_000 + i, i * 7 % 10**6, len(frame), len(frame)) + frame)
    path = tmp_path / "long.pcap"
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("kind", sorted(TOOLS))
@pytest.mark.parametrize("frac", [0.2, 0.5, 0.9])
def test_truncated_compressed(tmp_path: Path, kind: str, frac: float) -> None:
    src = longer_pcap(tmp_path)
    full = compress(src, kind, tmp_path / "full", *(["-B4"] if kind == "lz4" else []))
    path = tmp_path / f"cut.{kind}"
    raw = full.read_bytes()
    path.write_bytes(raw[:int(len(raw) * frac)])
    with pytest.raises(DataError) as ei:
        capture.read(path)
    err = ei.value
    assert str(path) in str(err) and "truncated" in str(err) and kind in str(err)
    assert err.offset == path.stat().st_size           # where the compressed stream broke off
    cap = capture.read(path, partial=True)
    ref = capture.read(src).packets
    n = cap.packets.num_rows
    assert 0 < n < ref.num_rows
    assert cap.packets.equals(ref.slice(0, n))
    # exactly the records complete in what the tool itself recovers from the damaged file
    got = tool_prefix_len(path, kind)
    assert n == sum(1 for e in record_ends(src) if e <= got)
    assert f"{got} bytes decompressed before it" in str(err) and cap.metadata["decompressed_size"] == got
    assert cap.error is not None and cap.metadata["error"] == str(cap.error)


@pytest.mark.parametrize("kind", sorted(TOOLS))
def test_corrupt_compressed(tmp_path: Path, kind: str) -> None:
    src = SOURCES[0]
    raw = bytearray(compress(src, kind, tmp_path / "full").read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)              # a run of zeros inside the compressed data
    path = tmp_path / "bad"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as ei:
        capture.read(path)
    assert str(path) in str(ei.value) and kind in str(ei.value) and ei.value.offset is not None
    cap = capture.read(path, partial=True)
    ref = capture.read(src).packets
    assert cap.packets.equals(ref.slice(0, cap.packets.num_rows)) and cap.packets.num_rows < ref.num_rows


def test_capture_errors_count_decompressed_bytes(tmp_path: Path) -> None:
    """A bad record inside a sound gzip stream: its offset is in the decompressed stream, and the
    message says so."""
    data = bytearray(SOURCES[0].read_bytes())
    data[24 + 8:24 + 12] = (10**6).to_bytes(4, "little")       # first record: caplen > snaplen
    plain = tmp_path / "bad.pcap"
    plain.write_bytes(bytes(data))
    path = compress(plain, "gzip", tmp_path / "bad.pcap.gz")
    with pytest.raises(DataError) as ei:
        capture.read(path)
    assert ei.value.offset == 24 and "gzip-decompressed stream" in str(ei.value)


def test_cli_ingest_compressed(tmp_path: Path) -> None:
    from hftlab.cli.ingest import ingest_cmd
    path = compress(SOURCES[0], "zstd", tmp_path / "c.pcap.zst")
    res = CliRunner().invoke(ingest_cmd, [str(path), "--out", str(tmp_path / "o.parquet")])
    assert res.exit_code == 0, res.output
    assert f"(zstd, {SOURCES[0].stat().st_size} bytes decompressed)" in res.output
    assert "87 packets" in res.output
    # the progress position is the compressed file's
    reader = capture.CaptureReader(path)
    for _ in reader:
        pass
    assert reader.input_pos == path.stat().st_size and reader.bytes_read == SOURCES[0].stat().st_size
