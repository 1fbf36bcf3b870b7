"""The report's one decision rule: every verdict in every table, figure and line of text.

**A comparison** is a configuration against its reference configuration, paired by seed:
``d_s = x(config, s) - x(reference, s)`` over the ``n`` seeds both ran, with mean ``m`` and
sample standard deviation ``sd``.

**Its standard error** respects how a seed replicates the data (:func:`replication`):

- seeds that *re-split one fixed data set* (embedded sets, MNIST-1D, CSV files) give
  overlapping training sets and shared or overlapping test points, so the ``d_s`` are not
  independent. The corrected resampled t of Nadeau & Bengio (2003) inflates the variance:
  ``se = sd * sqrt(1/n + n_test/n_train)``;
- seeds that *draw new samples* (``data=synthetic``) are independent: ``se = sd / sqrt(n)``
  (the paired t);
- runs that do not record it (logged before reglab did) get the paired t, and the report says so.

``t = m / se`` with ``n - 1`` degrees of freedom, two-sided ``p``. With ``sd = 0`` the test is
exact: ``p = 0`` when ``m != 0``, ``p = 1`` when ``m = 0``. One seed gives no test.

**The family** is every comparison the report was asked for (:mod:`reglab.report.effects`:
compared factors, not context). Its p-values are Holm-adjusted (step-down: the ``k``-th
smallest of ``K`` is multiplied by ``K - k + 1``, made monotone, capped at 1), and the verdict
is ``better`` / ``worse`` (the sign read with the metric's direction) when ``p_Holm < alpha``.

**Intervals** are Holm-consistent: the interval of a comparison has level ``1 - alpha_i`` with
``alpha_i = alpha * p / p_Holm``, the level at which it excludes 0 exactly when
``p_Holm < alpha`` (``p < alpha_i`` <=> ``p_Holm < alpha``). So an interval drawn or printed
excludes 0 if and only if its verdict is better or worse.

**Equivalence** (with a margin ``D > 0`` in the metric's units): two one-sided tests,
``p_eq = max(P(T >= (m + D) / se), P(T <= (m - D) / se))``, Holm-adjusted over the family;
``equivalent`` when ``p_eq,Holm < alpha`` and the difference is not itself significant
(``better`` / ``worse`` ``within ±D`` when both hold); otherwise ``inconclusive``.

**Seeds needed** (prospective, with a margin): the smallest ``n`` at which a two-sided test at
the family's first Holm level ``alpha / K`` detects a true difference of ``D`` with power 0.8,
given the comparison's ``sd`` and correction: noncentral t with ``n - 1`` degrees of freedom
and noncentrality ``D / (sd * sqrt(1/n + r))``. With ``r > 0`` the noncentrality is bounded by
``D / (sd sqrt(r))``, so a margin below the test-set noise is out of reach by seeds alone (inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reglab.report.directions import better_sign

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1000
PAIRED_T = "paired t"
CORRECTED_T = "corrected resampled t (Nadeau & Bengio 2003)"
UNTESTED = "untested: 1 seed"


@dataclass(frozen=True)
class Replication:
    """How the seeds of a comparison replicate the data: the interval's ``method`` and the
    variance correction ``ratio`` = n_test / n_train (0 for independent seeds)."""

    method: str
    ratio: float
    why: str


def replication(metrics: pd.DataFrame) -> Replication:
    """The replication of the runs whose final ``metrics`` are given (see the module docstring)."""
    resplit = metrics.get("data/resplit")
    if resplit is None or resplit.isna().all():
        return Replication(PAIRED_T, 0.0, "the runs do not record how seeds split the data")
    if (resplit.dropna() == 0).all():
        return Replication(PAIRED_T, 0.0, "each seed draws new samples: seeds are independent")
    ratio = float(np.nanmedian(metrics["data/n_test"]) / np.nanmedian(metrics["data/n_train"]))
    return Replication(CORRECTED_T, ratio, f"seeds re-split one data set (n_test / n_train = {ratio:.3g})")


def test_differences(differences, ratio: float = 0.0, margin: float | None = None) -> dict:
    """``n, mean, sd, se, df, p`` (and ``p_equivalence`` with a margin) of paired differences."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    n = len(d)
    row = {"n": n, "mean_difference": float(d.mean()) if n else math.nan}
    if n < 2:
        return row | {
            "sd": math.nan,
            "se": math.nan,
            "df": math.nan,
            "p": math.nan,
            "p_equivalence": math.nan,
        }
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd * math.sqrt(1 / n + ratio)
    df = n - 1
    if se > 0:
        p = float(2 * stats.t.sf(abs(mean) / se, df))
    else:
        p = 0.0 if mean != 0 else 1.0
    p_equivalence = math.nan
    if margin:
        if se > 0:
            lower = float(stats.t.sf((mean + margin) / se, df))
            upper = float(stats.t.cdf((mean - margin) / se, df))
            p_equivalence = max(lower, upper)
        else:
            p_equivalence = 0.0 if abs(mean) < margin else 1.0
    return row | {"sd": sd, "se": se, "df": df, "p": p, "p_equivalence": p_equivalence}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN left out of the family)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def interval(mean: float, se: float, df: float, level: float) -> tuple[float, float]:
    """``mean -+ t((1 + level) / 2, df) * se``."""
    from scipy import stats

    if not (math.isfinite(se) and math.isfinite(level)):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se if se > 0 else 0.0
    return mean - half, mean + half


def seeds_needed(sd: float, ratio: float, margin: float, alpha: float, power: float = POWER) -> float:
    """Smallest ``n`` with the given power for a true difference ``margin`` (module docstring)."""
    from scipy import stats

    if not (margin and math.isfinite(sd)):
        return math.nan
    if sd == 0:
        return 2.0
    for n in range(2, MAX_SEEDS + 1):
        critical = stats.t.ppf(1 - alpha / 2, n - 1)
        shift = margin / (sd * math.sqrt(1 / n + ratio))
        if stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift) >= power:
            return float(n)
    return math.inf


def decide(
    comparisons: pd.DataFrame, metric: str, margin: float | None = None, alpha: float = ALPHA
) -> pd.DataFrame:
    """``comparisons`` (columns ``mean_difference, se, df, p, p_equivalence, in_family``, from
    :func:`test_differences`) with the family's adjusted p-values, the Holm-consistent
    interval (``ci_level``, ``ci_low``, ``ci_high``), the verdict and, with a margin, the
    seeds needed (see the module docstring)."""
    decided = comparisons.copy()
    if decided.empty:
        return decided.assign(
            p_holm=[], p_equivalence_holm=[], ci_level=[], ci_low=[], ci_high=[], verdict=[], seeds_needed=[]
        )
    family = decided["in_family"].astype(bool)
    decided["p_holm"] = np.nan
    decided.loc[family, "p_holm"] = holm(decided.loc[family, "p"])
    decided["p_equivalence_holm"] = np.nan
    if margin:
        decided.loc[family, "p_equivalence_holm"] = holm(decided.loc[family, "p_equivalence"])
    levels, lows, highs = [], [], []
    for row in decided.itertuples():
        level = _consistent_level(row.p, row.p_holm, alpha)
        low, high = interval(row.mean_difference, row.se, row.df, level)
        levels.append(level)
        lows.append(low)
        highs.append(high)
    decided["ci_level"], decided["ci_low"], decided["ci_high"] = levels, lows, highs
    sign = better_sign(metric)
    decided["verdict"] = [
        verdict(r.n, r.mean_difference * sign, r.p_holm, r.p_equivalence_holm, alpha, margin, r.in_family)
        for r in decided.itertuples()
    ]
    size = int(family.sum())
    decided["seeds_needed"] = [
        seeds_needed(r.sd, r.ratio, margin, alpha / max(size, 1)) if margin and r.in_family else math.nan
        for r in decided.itertuples()
    ]
    return decided


def _consistent_level(p: float, p_holm: float, alpha: float) -> float:
    """``1 - alpha * p / p_Holm``: the level whose interval excludes 0 iff ``p_Holm < alpha``;
    the plain ``1 - alpha`` outside the family."""
    if not math.isfinite(p):
        return math.nan
    if not math.isfinite(p_holm):
        return 1 - alpha
    if p_holm == 0:
        return 1 - alpha
    return 1 - alpha * p / p_holm


def verdict(
    n: int,
    better_by: float,
    p_holm: float,
    p_equivalence_holm: float,
    alpha: float,
    margin: float | None,
    in_family: bool,
) -> str:
    """The verdict of one comparison (module docstring); ``better_by`` is the mean difference
    times the metric's :func:`~reglab.report.directions.better_sign`."""
    if n < 2:
        return UNTESTED
    if not in_family:
        return "context: not compared"
    different = p_holm < alpha
    equivalent = bool(margin) and p_equivalence_holm < alpha
    if different:
        word = "better" if better_by > 0 else "worse"
        return f"{word}, within ±{margin:g}" if equivalent else word
    if equivalent:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"


def is_clear(verdict_text: str) -> int:
    """+1 for a better, -1 for a worse verdict, 0 otherwise."""
    if verdict_text.startswith("better"):
        return 1
    if verdict_text.startswith("worse"):
        return -1
    return 0
