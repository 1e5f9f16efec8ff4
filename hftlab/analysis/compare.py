"""hftlab.analysis.compare: is B faster or steadier than A, and how sure are we?

For each percentile, the delta B - A with a bootstrap confidence interval
(percentile bootstrap of the nearest-rank quantile, independent resampling of
A and B, so unequal sample counts need nothing special; hftlab.analysis.kernels draws
each replicate's order statistic from its Beta distribution, which is exactly
the distribution of that order statistic in a resample of n). Then two whole-
distribution tests: Mann-Whitney U (is one stochastically smaller?) and the
two-sample Kolmogorov-Smirnov test (do the shapes differ at all?).

The verdict names the faster side only when the interval excludes zero, and
refuses a percentile that fewer than `min_beyond` samples back in either run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hftlab.errors import ConfigError
from hftlab.analysis.latency import PERCENTILES, beyond

__all__ = ["Comparison", "compare", "compare_many", "distribution_tests"]


@dataclass
class Comparison:
    """A vs B: one row per percentile (`table`), the distribution tests, the verdicts."""

    name_a: str
    name_b: str
    table: pa.Table
    tests: dict

    @property
    def verdicts(self) -> list[str]:
        return self.table.column("verdict").to_pylist()

    def __str__(self) -> str:
        t = self.tests
        return "\n".join(self.verdicts + [
            f"Mann-Whitney U: p = {t['mannwhitney_p']:.3g}, P({self.name_b} < {self.name_a}) = "
            f"{t['prob_b_faster']:.3f}; Kolmogorov-Smirnov: D = {t['ks_d']:.3f}, p = {t['ks_p']:.3g}"
            + (f" (on {t['tested_a']:,} / {t['tested_b']:,} samples)" if t["subsampled"] else "")])


def _clean(x, name: str) -> np.ndarray:
    v = np.asarray(x)
    if v.ndim != 1 or v.dtype.kind not in "iuf":
        raise ConfigError(f"{name}: a 1-D numeric array")
    v = v[~np.isnan(v)] if v.dtype.kind == "f" else v
    if len(v) < 2:
        raise ConfigError(f"{name}: at least two samples")
    return v


def distribution_tests(a, b, *, max_samples: int = 1_000_000, seed: int = 0) -> dict:
    """Mann-Whitney U (two-sided) and Kolmogorov-Smirnov on A and B; each
    side is subsampled at random to max_samples (stated in the result)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    sa, sb = _clean(a, "A"), _clean(b, "B")
    sub = len(sa) > max_samples or len(sb) > max_samples
    if len(sa) > max_samples:
        sa = rng.choice(sa, max_samples, replace=False)
    if len(sb) > max_samples:
        sb = rng.choice(sb, max_samples, replace=False)
    mw = stats.mannwhitneyu(sb, sa, alternative="two-sided")
    ks = stats.ks_2samp(sa, sb)
    # U counts the pairs (b, a) with b > a, ties as one half: U / (na * nb) is P(B > A) + P(tie) / 2,
    # and one minus it the common-language effect size of B being faster
    prob_b_slower = float(mw.statistic) / (len(sa) * len(sb))
    return {"mannwhitney_u": float(mw.statistic), "mannwhitney_p": float(mw.pvalue),
            "prob_b_faster": 1.0 - prob_b_slower, "ks_d": float(ks.statistic), "ks_p": float(ks.pvalue),
            "tested_a": len(sa), "tested_b": len(sb), "subsampled": sub}


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _verdict(q: str, a: str, b: str, d: float, lo: float, hi: float, conf: float,
             ba: int, bb: int, min_beyond: int, unit: str) -> tuple[str, str]:
    pct = f"{conf * 100:g}%"
    if min(ba, bb) < min_beyond and q != "p50":
        return "insufficient", (f"{q}: not enough samples ({ba} beyond it in {a}, {bb} in {b}; "
                                f"{min_beyond} needed)")
    ci = f"{pct} CI [{_fmt(lo)}, {_fmt(hi)}] {unit}"
    if hi < 0:
        return "b_faster", f"{b} is faster at {q} by {_fmt(-d)} {unit}, {ci}"
    if lo > 0:
        return "a_faster", f"{a} is faster at {q} by {_fmt(d)} {unit}, {ci}"
    return "no_difference", f"no significant difference at {q}: delta {_fmt(d)} {unit}, {ci}"


def compare(a, b, *, names: tuple[str, str] = ("A", "B"), qs: tuple[float, ...] = PERCENTILES,
            n_boot: int = 2000, conf: float = 0.95, seed: int = 0, min_beyond: int = 10,
            unit: str = "ns", tests: bool = True) -> Comparison:
    """Compare latency samples A and B (any sizes). Deltas are B - A, so a
    negative delta means B is faster. min_beyond: samples that must lie
    beyond a tail percentile in both runs before it gets a verdict (a
    bootstrap of p99.99 from 10 samples beyond it is still rough)."""
    from hftlab.analysis import kernels

    if not 0 < conf < 1:
        raise ConfigError("conf must be in (0, 1)")
    if n_boot < 100:
        raise ConfigError("n_boot must be >= 100")
    sa, sb = np.sort(_clean(a, names[0])), np.sort(_clean(b, names[1]))
    fracs = [q / 100 for q in qs]
    reps = kernels.bootstrap_quantiles(sa, sb, fracs, n_boot, seed)
    alpha = (1 - conf) / 2
    rows: dict[str, list] = {k: [] for k in ("percentile", "a", "b", "delta", "delta_rel", "ci_low",
                                             "ci_high", "n_a", "n_b", "beyond_a", "beyond_b",
                                             "outcome", "verdict")}
    for j, (q, f) in enumerate(zip(qs, fracs)):
        va = float(sa[max(int(np.ceil(f * len(sa))), 1) - 1])
        vb = float(sb[max(int(np.ceil(f * len(sb))), 1) - 1])
        lo, hi = np.quantile(reps[j], [alpha, 1 - alpha])
        ba, bb = beyond(len(sa), q), beyond(len(sb), q)
        name = f"p{q:g}"
        outcome, text = _verdict(name, names[0], names[1], vb - va, lo, hi, conf, ba, bb, min_beyond, unit)
        for k, v in (("percentile", name), ("a", va), ("b", vb), ("delta", vb - va),
                     ("delta_rel", (vb - va) / va if va else None), ("ci_low", float(lo)),
                     ("ci_high", float(hi)), ("n_a", len(sa)), ("n_b", len(sb)), ("beyond_a", ba),
                     ("beyond_b", bb), ("outcome", outcome), ("verdict", text)):
            rows[k].append(v)
    table = pa.table(rows).append_column("a_name", pa.array([names[0]] * len(qs))) \
                          .append_column("b_name", pa.array([names[1]] * len(qs)))
    t = distribution_tests(sa, sb, seed=seed) if tests else {}
    return Comparison(names[0], names[1], table, t)


def compare_many(samples: dict[str, np.ndarray], *, baseline: str | None = None, **kw) -> pa.Table:
    """Every run against one baseline (the first by default): the rows of
    each `compare`, with the distribution tests' p-values as columns."""
    if len(samples) < 2:
        raise ConfigError("compare_many needs at least two runs")
    base = baseline or next(iter(samples))
    if base not in samples:
        raise ConfigError(f"baseline {base!r} is not one of the runs")
    parts = []
    for name, v in samples.items():
        if name == base:
            continue
        c = compare(samples[base], v, names=(base, name), **kw)
        t = c.table
        for key in ("mannwhitney_p", "prob_b_faster", "ks_d", "ks_p"):
            t = t.append_column(key, pa.array([c.tests.get(key)] * t.num_rows, pa.float64()))
        parts.append(t)
    return pa.concat_tables(parts)
