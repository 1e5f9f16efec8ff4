"""The split of a run's internal span (issue 15 item 4), checked alike for
every SUT: each order's latency row has tsc_rx < tsc_doorbell < tsc_tx, so
decide (frame seen .. order complete, before the doorbell) and doorbell (the
doorbell write, or the baseline's send call, until it returns) are both
positive and together make up the internal span.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

SPAN_COLUMNS = ("tsc_doorbell", "decide_ns", "doorbell_ns", "decide_cycles", "doorbell_cycles")


def check_spans(lat: pa.Table) -> dict[str, float]:
    """Assert the split for every order of a run's latency table; returns
    the medians of decide and doorbell cycles (for a test to print)."""
    missing = [c for c in SPAN_COLUMNS if c not in lat.column_names]
    assert not missing, f"latency table lacks {missing}"
    assert lat.num_rows > 0
    for c in SPAN_COLUMNS + ("tsc_rx", "tsc_tx", "internal_ns", "internal_cycles"):
        assert lat.column(c).null_count == 0, f"{c}: {lat.column(c).null_count} orders without it"
    rx, db, tx = (lat.column(c).to_numpy().astype(np.int64) for c in ("tsc_rx", "tsc_doorbell", "tsc_tx"))
    bad = np.flatnonzero(~((rx < db) & (db < tx)))
    assert not len(bad), (f"{len(bad)} orders not stamped rx < doorbell < tx, first: "
                          f"{rx[bad[0]]} {db[bad[0]]} {tx[bad[0]]}")
    decide, door = lat.column("decide_cycles").to_numpy(), lat.column("doorbell_cycles").to_numpy()
    assert (decide > 0).all() and (door > 0).all()
    assert (decide + door <= lat.column("internal_cycles").to_numpy()).all()
    dn, bn = lat.column("decide_ns").to_numpy(), lat.column("doorbell_ns").to_numpy()
    assert (dn >= 0).all() and (bn >= 0).all()
    # each ns figure is rounded on its own: their sum is within 1 ns of internal_ns
    assert (dn + bn <= lat.column("internal_ns").to_numpy() + 1).all()
    return {"decide_cycles_p50": float(np.median(decide)), "doorbell_cycles_p50": float(np.median(door))}
