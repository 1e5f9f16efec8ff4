"""PTP analysis: offset from master and mean path delay (IEEE 1588-2008 11.3).

The capture is the slave's view: t2 (Sync arrival) and t3 (Delay_Req
departure) are capture timestamps; t1 comes from the Sync itself (one-step)
or from its Follow_Up (two-step, matched on domain, master port identity and
sequenceId), t4 from the Delay_Resp matched to its Delay_Req by domain,
requestingPortIdentity and sequenceId. With c_s the Sync (+ Follow_Up)
correction and c_r the Delay_Resp correction:

    mean_path_delay = ((t2 - t1 - c_s) + (t4 - t3 - c_r)) / 2
    offset          = t2 - t1 - c_s - mean_path_delay

Both sides of every as-of join are sorted by time above (polars cannot check
sortedness within `by` groups, hence check_sortedness=False).
Each delay exchange uses the latest Sync of the same master at or before t3;
each Sync uses the latest mean path delay measured before it. Arithmetic is
exact in units of 2^-16 ns (the correctionField's) and results are floored
to whole ns; pairs more than ~39 hours apart are left null.

polars is imported by the functions that use it, not with the module: a
process that reads captures without pairing PTP messages never loads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import polars as pl

SCALE = 1 << 16
_KEY = ["domain", "clock_id", "port", "seq_id"]


@dataclass
class PtpSeries:
    """`sync`: one row per Sync with t1, t2 and the offset from master;
    `delay`: one row per completed Delay_Req/Delay_Resp exchange."""
    sync: pa.Table
    delay: pa.Table


def _syncs(p: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    sync = p.filter(pl.col("msg_type") == 0)
    fu = p.filter(pl.col("msg_type") == 8).select(
        *_KEY, pl.col("origin_ts_ns").alias("fu_t1"), pl.col("correction_scaled").alias("fu_corr"))
    fu = fu.unique(subset=_KEY, keep="first")
    s = sync.join(fu, on=_KEY, how="left")
    return s.select(
        pl.col("ts_ns").alias("t2_ns"), *_KEY, "two_step",
        pl.when(pl.col("two_step")).then(pl.col("fu_t1")).otherwise(pl.col("origin_ts_ns")).alias("t1_ns"),
        (pl.col("correction_scaled") + pl.when(pl.col("two_step")).then(pl.col("fu_corr")).otherwise(0))
        .alias("corr_s"),
    ).filter(pl.col("t1_ns").is_not_null()).sort("t2_ns")


def _exchanges(p: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    req = p.filter(pl.col("msg_type") == 1).select(
        pl.col("ts_ns").alias("t3_ns"), "domain", pl.col("clock_id").alias("slave_clock_id"),
        pl.col("port").alias("slave_port"), "seq_id")
    resp = p.filter(pl.col("msg_type") == 9).select(
        pl.col("origin_ts_ns").alias("t4_ns"), "domain", pl.col("requesting_clock_id").alias("slave_clock_id"),
        pl.col("requesting_port").alias("slave_port"), "seq_id", pl.col("clock_id").alias("master_clock_id"),
        pl.col("port").alias("master_port"), pl.col("correction_scaled").alias("corr_r"))
    resp = resp.unique(subset=["domain", "slave_clock_id", "slave_port", "seq_id"], keep="first")
    return req.join(resp, on=["domain", "slave_clock_id", "slave_port", "seq_id"], how="inner").sort("t3_ns")


def _fits(d: pl.Expr) -> pl.Expr:
    return d.abs() < (1 << 46)          # |d| * 2**16 stays inside int64


def ptp_offsets(ptp: pa.Table) -> PtpSeries:
    """Pair the PTP messages of a capture (the `ptp` table) into series."""
    import polars as pl

    p = pl.from_arrow(ptp)
    syncs = _syncs(p)
    ex = _exchanges(p)
    s_for_ex = syncs.rename({"clock_id": "master_clock_id", "port": "master_port"}).select(
        "t2_ns", "domain", "master_clock_id", "master_port", "t1_ns", "corr_s")
    d = ex.join_asof(s_for_ex, left_on="t3_ns", right_on="t2_ns", check_sortedness=False,
                     by=["domain", "master_clock_id", "master_port"], strategy="backward")
    ms = pl.col("t2_ns") - pl.col("t1_ns")
    sm = pl.col("t4_ns") - pl.col("t3_ns")
    ok = _fits(ms) & _fits(sm)
    mpd_scaled = (ms * SCALE - pl.col("corr_s") + sm * SCALE - pl.col("corr_r")) // 2
    d = d.with_columns(
        pl.when(ok).then(mpd_scaled // SCALE).alias("mean_path_delay_ns"),
        pl.when(ok).then((ms * SCALE - pl.col("corr_s") - mpd_scaled) // SCALE).alias("offset_ns"),
        pl.when(ok).then(mpd_scaled).alias("mpd_scaled"),
    )
    delay = d.select(pl.col("t3_ns").alias("ts_ns"), "domain", "master_clock_id", "master_port",
                     "slave_clock_id", "slave_port", "seq_id", "t1_ns", "t2_ns", "t3_ns", "t4_ns",
                     (pl.col("corr_s") // SCALE).alias("sync_correction_ns"),
                     (pl.col("corr_r") // SCALE).alias("resp_correction_ns"),
                     "mean_path_delay_ns", "offset_ns")
    latest = d.filter(pl.col("mpd_scaled").is_not_null()).select(
        pl.col("t4_ns").alias("mpd_at"), "domain", pl.col("master_clock_id").alias("clock_id"),
        pl.col("master_port").alias("port"), "mpd_scaled").sort("mpd_at")
    s = syncs.join_asof(latest, left_on="t2_ns", right_on="mpd_at", check_sortedness=False,
                        by=["domain", "clock_id", "port"], strategy="backward")
    ms_ok = _fits(ms)
    s = s.with_columns(
        (pl.col("mpd_scaled") // SCALE).alias("mean_path_delay_ns"),
        pl.when(ms_ok).then((ms * SCALE - pl.col("corr_s") - pl.col("mpd_scaled")) // SCALE).alias("offset_ns"),
    )
    sync = s.select(pl.col("t2_ns").alias("ts_ns"), "domain", "clock_id", "port", "seq_id", "two_step",
                    "t1_ns", "t2_ns", (pl.col("corr_s") // SCALE).alias("correction_ns"),
                    "mean_path_delay_ns", "offset_ns")
    return PtpSeries(sync=sync.to_arrow(), delay=delay.to_arrow())
