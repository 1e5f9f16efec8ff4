"""hftlab.analysis.compare: bootstrap intervals cover a known shift at their stated
rate; verdicts name the faster run only when the interval excludes zero."""
from __future__ import annotations

import numpy as np
import pytest

from hftlab.analysis.compare import compare, compare_many


def test_bootstrap_interval_covers_a_known_shift_at_the_stated_rate():
    # B is A's distribution shifted by +40 ns: every quantile moves by exactly 40
    rng = np.random.default_rng(11)
    trials, shift = 200, 40.0
    hits = {"p50": 0, "p90": 0}
    for k in range(trials):
        a = 10_000 + rng.lognormal(6, 0.5, 1_500)
        b = 10_000 + shift + rng.lognormal(6, 0.5, 900)  # unequal counts on purpose
        c = compare(a, b, qs=(50.0, 90.0), n_boot=400, seed=k, tests=False)
        for row in c.table.to_pylist():
            hits[row["percentile"]] += row["ci_low"] <= shift <= row["ci_high"]
    for q, h in hits.items():
        # 95% nominal; binomial sd over 200 trials is 1.5%: accept 89% .. 99.5%
        assert 0.89 <= h / trials <= 0.995, (q, h / trials)


def test_verdicts_and_tests():
    rng = np.random.default_rng(0)
    a = (10_000 + rng.lognormal(8, 0.5, 20_000)).astype(np.int64)
    b = a[:15_000] - 500
    c = compare(a, b, names=("slow", "fast"), n_boot=500)
    row = c.table.to_pylist()[0]
    assert row["outcome"] == "b_faster" and row["delta"] == pytest.approx(-500, abs=60)
    assert row["verdict"].startswith("fast is faster at p50 by")
    assert "95% CI" in row["verdict"]
    assert c.tests["mannwhitney_p"] < 1e-6 and c.tests["prob_b_faster"] > 0.5 and c.tests["ks_p"] < 1e-6
    assert c.table.column("outcome").to_pylist()[-1] == "insufficient"  # p99.99 from 2 samples beyond
    same = compare(a, a.copy(), n_boot=500)
    assert same.table.column("outcome").to_pylist()[:4] == ["no_difference"] * 4
    assert "Mann-Whitney" in str(c)


def test_compare_many_against_a_baseline():
    rng = np.random.default_rng(1)
    runs = {n: rng.normal(1_000 + d, 20, 5_000) for n, d in (("base", 0), ("x", 30), ("y", -30))}
    t = compare_many(runs, n_boot=300, qs=(50.0,))
    got = {r["b_name"]: r["outcome"] for r in t.to_pylist()}
    assert got == {"x": "a_faster", "y": "b_faster"}
