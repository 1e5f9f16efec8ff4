"""hftlab report: files exist, PNGs decode, Parquet exports scan as one
hive-partitioned dataset (issue 5). Run directories are synthesised here, so
the test needs neither root nor QEMU."""
from __future__ import annotations

import json
import re

import numpy as np
import polars
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from hftlab.cli import main


def _fake_run(d, run_id, shift, n, seed):
    rng = np.random.default_rng(seed)
    t_in = np.cumsum(rng.integers(10_000, 50_000, n)).astype(np.int64) + 1_700_000_000_000_000_000
    internal = (2_000 + rng.lognormal(7, 0.5, n)).astype(np.int64)
    wire = internal + 40_000 + shift + rng.integers(0, 5_000, n)
    d.mkdir(parents=True)
    pq.write_table(pa.table({"token": [f"01{i:012x}" for i in range(n)], "trigger_seq": np.arange(n, dtype=np.uint64),
                             "t_wire_in": t_in, "t_wire_out": t_in + wire, "wire_ns": wire,
                             "tsc_rx": np.zeros(n, np.uint64), "tsc_tx": np.zeros(n, np.uint64),
                             "internal_ns": internal, "internal_cycles": internal * 2}), d / "latency.parquet")
    (d / "run.json").write_text(json.dumps({"run_id": run_id, "status": "ok",
                                            "spec": {"sut": "hftos", "accel": "tcg", "rate_msgs_per_s": 1000 + shift},
                                            "environment": {"cpu": "test"}}))
    return d


def test_report_of_two_runs(tmp_path):
    a = _fake_run(tmp_path / "a", "run-a", 0, 3_000, 1)
    b = _fake_run(tmp_path / "b", "run-b", -3_000, 2_000, 2)
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", str(a), str(b), "--out", str(out), "--study", "s1", "--boot", "300"])
    assert res.exit_code == 0, res.output
    assert "run-b is faster at p50" in res.output
    page = (out / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 4
    import matplotlib.image as mpimg

    for name in ("histogram", "ccdf", "over_time", "stages"):
        img = mpimg.imread(out / f"{name}.png")  # decodes, or raises
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    for needle in ("Percentiles", "CCDF", "Per-stage", "Runs side by side", "samples beyond"):
        assert needle in page
    ds = pq.ParquetDataset(out / "parquet", partitioning="hive").read()
    assert ds.num_rows == 5_000
    assert set(ds.column("run").to_pylist()) == {"run-a", "run-b"}
    assert set(ds.column("study").to_pylist()) == {"s1"} and set(ds.column("sut").to_pylist()) == {"hftos"}
    assert polars.scan_parquet(out / "parquet", hive_partitioning=True).select(polars.len()).collect().item() == 5_000
    from hftlab.analysis.hdr import read_log

    assert read_log(out / "hdr" / "run-a.hlog").total().total == 3_000


def test_report_rejects_a_non_run(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a complete run directory" in res.output
