"""Every compared factor gets an interval: each level of each factor against the factor's
baseline level, all other factors fixed, paired over seeds.

For factor ``f``, level ``L`` and one combination ``c`` of the other factors' values, the
seeds ``s`` that ran both ``(f=L, c)`` and ``(f=base, c)`` give differences
``d_s = metric(L, c, s) - metric(base, c, s)``. With ``n`` such seeds, mean ``m`` and sample
standard deviation ``sd``:

- 95 % interval ``m -+ t(0.975, n-1) sd / sqrt(n)`` (:func:`~reglab.report.stats.t_interval`);
- paired t-test ``t = m / (sd / sqrt(n))``, two-sided ``p``; across the family of all
  comparisons of the sweep the p-values are Holm-adjusted (step-down: the ``k``-th smallest of
  ``K`` p-values is multiplied by ``K - k + 1``, then made monotone and capped at 1);
- the paired effect size ``d_z = m / sd`` (Cohen's d for paired samples);
- the seeds for 80 % power: the smallest ``n`` at which a two-sided paired t-test at level
  0.05 detects an effect of size ``d_z`` with probability 0.8 (noncentral t with
  ``n - 1`` degrees of freedom and noncentrality ``d_z sqrt(n)``).

The baseline level: ``none`` for the regularizer, else the smallest number (dropout 0),
``False`` before ``True``, or the first level in display order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reglab.report.axes import SEED, config_label, display_name, levels
from reglab.report.stats import t_interval
from reglab.report.store import Sweep

POWER, ALPHA, MAX_SEEDS = 0.8, 0.05, 10_000


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


def seeds_for_power(effect: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """Smallest number of paired seeds with the given power for effect size ``effect``."""
    from scipy import stats

    if not math.isfinite(effect) or effect == 0:
        return math.nan
    for n in range(2, MAX_SEEDS):
        critical = stats.t.ppf(1 - alpha / 2, n - 1)
        shift = abs(effect) * math.sqrt(n)
        if stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift) >= power:
            return float(n)
    return math.inf


def _paired_row(factor: str, level, base, context: str, differences: list[float]) -> dict:
    from scipy import stats

    mean, sd, low, high = t_interval(differences)
    n = len(differences)
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1)) if n > 1 and sd > 0 else math.nan
    effect = mean / sd if n > 1 and sd > 0 else math.nan
    return {
        "factor": display_name(factor),
        "level": level,
        "baseline": base,
        "context": context,
        "n": n,
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "p": p,
        "effect_dz": effect,
        "seeds_for_80_power": seeds_for_power(effect),
    }


def factor_effects(sweep: Sweep, metric: str, columns: list[str]) -> pd.DataFrame:
    """One row per factor, non-baseline level and combination of the other factors (see the
    module docstring), with Holm-adjusted p-values over all rows (``p_holm``)."""
    finished = sweep.finished()
    if SEED not in sweep.params or not len(finished):
        return pd.DataFrame()
    params = sweep.params.loc[finished]
    values = sweep.metrics.loc[finished, metric]
    rows = []
    for factor in columns:
        others = [c for c in columns if c != factor]
        base, *rest = levels(params, factor)
        for context, members in params.groupby(others, sort=False) if others else [((), params)]:
            by_level = members.groupby(factor)
            if base not in by_level.groups:
                continue
            base_by_seed = values[by_level.get_group(base).index].groupby(params[SEED]).mean()
            for level in rest:
                if level not in by_level.groups:
                    continue
                by_seed = values[by_level.get_group(level).index].groupby(params[SEED]).mean()
                paired = (by_seed - base_by_seed).dropna()
                if len(paired):
                    label = config_label(others, context if isinstance(context, tuple) else (context,))
                    rows.append(_paired_row(factor, level, base, label, paired.tolist()))
    effects = pd.DataFrame(rows)
    if not effects.empty:
        effects["p_holm"] = holm(effects["p"])
    return effects
