"""The numbers of the report: per-configuration summaries and paired differences.

**Per configuration**, over its seeds ``s = 1..n``: the mean ``m = (1/n) sum_s x_s`` and
the sample standard deviation ``sd = sqrt(sum_s (x_s - m)^2 / (n - 1))`` (``ddof=1``; NaN
for ``n = 1``) of the test metric, the generalization gap at the best epoch, the share of
exactly-zero weights of the tested model and the number of epochs trained.

**Paired differences** against the baseline configuration with the same other axis
values: per seed ``s`` that both have, ``d_s = x(config, s) - x(baseline, s)``; their mean
``d`` and the Student t interval ``d +- t(1 - alpha/2, n - 1) * sd(d) / sqrt(n)``. Pairing by
seed removes the variance a seed shares between the two (data split, initialization).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from reglab.errors import ReportError
from reglab.report.axes import (
    SEED,
    choose_baseline,
    config_label,
    configurations,
    display_name,
    is_baseline,
    matched_columns,
    value_key,
)
from reglab.report.store import Sweep

CONFIDENCE = 0.95
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "ece", "error")
ZERO_FRACTION = "weights/zero_fraction"  # the summary column: of the tested weights, see sparsity()
BEST_ZERO_FRACTION = "best/weights/zero_fraction"
EPOCHS = "fit/epochs"
DIFFERENCE_COLUMNS = [
    "config",
    "baseline",
    "n",
    "seeds",
    "differences",
    "mean_difference",
    "std_difference",
    "ci95_low",
    "ci95_high",
    "config_mean",
    "baseline_mean",
    "verdict",
]


def t_interval(differences, confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """``(mean, sd, low, high)`` of values ``d_1..d_n``: ``mean = (1/n) sum d_i``, ``sd`` the
    sample standard deviation (``ddof=1``) and ``[low, high] = mean -+ t(q, n - 1) sd / sqrt(n)``
    with ``q = (1 + confidence) / 2`` (Student t, ``n - 1`` degrees of freedom). ``sd`` and
    the interval are NaN for one value, everything is NaN for none."""
    from scipy import stats

    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def detect_metric(metrics: pd.DataFrame) -> str:
    """``test/acc`` (classification), else ``test/r2``, else ``test/mse`` (regression)."""
    for candidate in ("test/acc", "test/r2", "test/mse"):
        if candidate in metrics and metrics[candidate].notna().any():
            return candidate
    available = sorted(c for c in metrics.columns if c.startswith("test/"))
    raise ReportError(
        f"no test/acc, test/r2 or test/mse in the finished runs; pass --metric "
        f"(test metrics: {', '.join(available) or 'none'})"
    )


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1].lower().endswith(LOWER_IS_BETTER)


def gap_metric(metrics: pd.DataFrame) -> str | None:
    """``gap/acc`` (train - val accuracy at the best epoch), else ``gap/loss``."""
    for candidate in ("gap/acc", "gap/loss"):
        if candidate in metrics and metrics[candidate].notna().any():
            return candidate
    return None


def sparsity(metrics: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per run, the share of weights exactly 0 in the tested (best-epoch) model,
    ``best/weights/zero_fraction``, and for runs that lack it (logged before it existed)
    the last epoch's ``weights/zero_fraction``; with, per run, ``"best"`` or ``"last"``."""
    best = metrics.get(BEST_ZERO_FRACTION, pd.Series(np.nan, index=metrics.index))
    last = metrics.get(ZERO_FRACTION, pd.Series(np.nan, index=metrics.index))
    source = pd.Series(
        np.where(best.notna(), "best", np.where(last.notna(), "last", "")), index=metrics.index
    )
    return best.fillna(last), source


def summarize(sweep: Sweep, metric: str, columns: list[str]) -> pd.DataFrame:
    """One row per configuration: its axis values, ``config`` label, ``n`` (runs with the
    metric), mean and sample std (ddof=1) of each quantity, and where the zero fraction
    comes from (``weights/zero_fraction_source``: best, last or both, see :func:`sparsity`)."""
    finished = sweep.finished()
    metrics = sweep.metrics.loc[finished].copy()
    zeros, source = sparsity(metrics)
    if zeros.notna().any():
        metrics[ZERO_FRACTION] = zeros
    quantities = [
        q for q in (metric, gap_metric(metrics), ZERO_FRACTION, EPOCHS) if q is not None and q in metrics
    ]
    rows = []
    for key, members in configurations(sweep.params, finished, columns):
        row = {display_name(c): v for c, v in zip(columns, key, strict=True)}
        row["config"] = config_label(columns, key)
        row["n"] = int(metrics.loc[members, metric].notna().sum())
        for quantity in quantities:
            row[f"{quantity}_mean"] = metrics.loc[members, quantity].mean()
            row[f"{quantity}_std"] = metrics.loc[members, quantity].std(ddof=1)
        if ZERO_FRACTION in quantities:
            row[f"{ZERO_FRACTION}_source"] = "+".join(sorted(set(source[members]) - {""}))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(
    sweep: Sweep, metric: str, columns: list[str], baseline: dict[str, str] | None = None
) -> pd.DataFrame:
    """Per configuration with a baseline: per-seed differences ``d_s`` to it, their mean and
    t interval (:func:`t_interval`). ``baseline``: ``{axis: level}`` (default: see
    :func:`reglab.report.axes.choose_baseline`); a configuration's baseline is the baseline
    configuration with the same :func:`~reglab.report.axes.matched_columns` values."""
    header = [*(display_name(c) for c in columns), *DIFFERENCE_COLUMNS]
    finished = sweep.finished()
    if baseline is None:
        baseline = choose_baseline(sweep.params.loc[finished], columns)
    if not baseline or SEED not in sweep.params:
        return pd.DataFrame(columns=header)
    frame = sweep.params.loc[finished, [*dict.fromkeys([*columns, SEED])]].copy()
    frame["value"] = sweep.metrics.loc[finished, metric]
    frame = frame[frame["value"].notna()]
    base = frame[is_baseline(frame, baseline)]
    match = matched_columns(columns, baseline, base)
    references = _references(base, columns, match, baseline)
    base_value = {
        key if isinstance(key, tuple) else (key,): value
        for key, value in base.groupby([*match, SEED], sort=False)["value"].mean().items()
    }
    rows = []
    for key, members in configurations(frame, frame.index[~is_baseline(frame, baseline)], columns):
        group = frame.loc[members]
        match_key = tuple(group[match].iloc[0])
        if match_key not in references:
            continue
        per_seed = group.groupby(SEED)["value"].mean()
        seeds = sorted((s for s in per_seed.index if (*match_key, s) in base_value), key=value_key)
        diffs = [float(per_seed[s] - base_value[(*match_key, s)]) for s in seeds]
        mean, std, low, high = t_interval(diffs)
        rows.append(
            {
                **{display_name(c): v for c, v in zip(columns, key, strict=True)},
                "config": config_label(columns, key),
                "baseline": references[match_key],
                "n": len(diffs),
                "seeds": json.dumps([_number(s) for s in seeds]),
                "differences": json.dumps(diffs),
                "mean_difference": mean,
                "std_difference": std,
                "ci95_low": low,
                "ci95_high": high,
                "config_mean": _mean([per_seed[s] for s in seeds]),
                "baseline_mean": _mean([base_value[(*match_key, s)] for s in seeds]),
                "verdict": verdict(len(diffs), low, high, metric),
            }
        )
    return pd.DataFrame(rows, columns=header)


def _references(
    base: pd.DataFrame, columns: list[str], match: list[str], baseline: dict[str, str]
) -> dict[tuple, str]:
    """Label of the one baseline configuration per value of the ``match`` axes; an error
    when the baseline leaves an axis open (two baseline configurations with equal ``match``)."""
    references: dict[tuple, str] = {}
    for key, members in configurations(base, base.index, columns):
        match_key = tuple(base.loc[members[0], match])
        if match_key in references:
            open_axes = [display_name(c) for c in columns if c not in match and c not in baseline]
            chosen = " ".join(f"{display_name(k)}={v}" for k, v in baseline.items())
            raise ReportError(
                f"--baseline {chosen} matches several configurations with the same other "
                f"params ({references[match_key]}; {config_label(columns, key)}); "
                f"add --baseline for {', '.join(open_axes)}"
            )
        references[match_key] = config_label(columns, key)
    return references


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def verdict(n: int, low: float, high: float, metric: str) -> str:
    """``better`` / ``worse`` when the interval excludes 0 (the sign read with the metric's
    direction), else no clear difference; no verdict for fewer than two pairs."""
    if n == 0:
        return "no common seeds"
    if n == 1:
        return "n=1: no interval"
    better_if_positive = not lower_is_better(metric)
    if low > 0:
        return "better" if better_if_positive else "worse"
    if high < 0:
        return "worse" if better_if_positive else "better"
    return "no clear difference (interval contains 0)"
