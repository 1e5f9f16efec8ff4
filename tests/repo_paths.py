"""Where the tests find the data the repository carries, relative to this file
(so a clone anywhere, with nothing beside it, finds the same files).

captures/  third-party and own pcap/pcapng samples (captures/README.md)
datasets/  ITCH feeds (datasets/README.md)
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
DATASETS = ROOT / "datasets"

RITCH = DATASETS / "ritch" / "ex20101224.TEST_ITCH_50"
RITCH_COUNTS = DATASETS / "ritch" / "EXPECTED-counts.txt"
# `hftlab synth --messages 2000 --seed 7`: NASDAQ framing with real length prefixes
SYNTH = DATASETS / "synth" / "synth-2000-seed7.itch"
SYNTH_COUNTS = DATASETS / "synth" / "EXPECTED-counts.txt"

PCAPNG_SUITE = CAPTURES / "pcapng-suite"
PTP = CAPTURES / "ptp"
TRAILERS = CAPTURES / "trailers"
OTHER = CAPTURES / "other"
MOLDUDP64 = CAPTURES / "moldudp64"


def read_counts(path: Path) -> dict[str, int]:
    """`TYPE<TAB>COUNT` lines of an EXPECTED-counts.txt (comments skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            out[parts[0]] = int(parts[1])
    return out
