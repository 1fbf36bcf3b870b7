"""Per-configuration summaries: over its seeds ``s = 1..n``, the mean ``m = (1/n) sum_s x_s``
and the sample standard deviation ``sd = sqrt(sum_s (x_s - m)^2 / (n - 1))`` (``ddof=1``; NaN
for ``n = 1``) of the test metric, the generalization gap at the tested epoch, the share of
exactly-zero weights of the tested model, the number of epochs trained, and the share of the
configuration's runs that failed. Comparisons between configurations are
:mod:`reglab.report.comparisons`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reglab.errors import ReportError
from reglab.report.axes import config_label, configurations, display_name
from reglab.report.store import Sweep

ZERO_FRACTION = "weights/zero_fraction"  # the summary column: of the tested weights, see sparsity()
BEST_ZERO_FRACTION = "best/weights/zero_fraction"
EPOCHS = "fit/epochs"
FAILED = "failed"  # the summary column: seeds of the configuration whose runs all failed


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


def failed_outcomes(sweep: Sweep, columns: list[str]) -> pd.DataFrame:
    """The configurations and seeds whose every run FAILED or was KILLED (a failure that a rerun
    or another candidate of the same seed made good is not an outcome): columns ``columns``,
    ``seed``, ``config`` and the ``run_id`` and ``reason`` of the last failure."""
    from reglab.report.axes import SEED

    header = [*columns, SEED, "config", "run_id", "reason"]
    failed = sweep.failed()
    failed = failed[~failed.rerun_finished]
    if failed.empty or SEED not in sweep.params:
        return pd.DataFrame(columns=header)
    params = sweep.params
    finished = {(config_label(columns, params.loc[r, columns]), params.at[r, SEED]) for r in sweep.finished()}
    rows = {}
    for run_id, run in failed.iterrows():
        key = (config_label(columns, params.loc[run_id, columns]), params.at[run_id, SEED])
        if key not in finished:
            values = dict(zip(columns, params.loc[run_id, columns], strict=True))
            rows[key] = {
                **values,
                SEED: key[1],
                "config": key[0],
                "run_id": run_id,
                "reason": run.failure_reason,
            }
    return pd.DataFrame(list(rows.values()), columns=header)


def summarize(
    sweep: Sweep, metric: str, columns: list[str], failures: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per configuration: its axis values, ``config`` label, ``n`` (runs with the
    metric), ``failed`` (its seeds that failed, :func:`failed_outcomes`), mean and sample std
    (ddof=1) of each quantity, and where the zero fraction comes from
    (``weights/zero_fraction_source``: best, last or both, see :func:`sparsity`)."""
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
        row[FAILED] = 0 if failures is None else int((failures["config"] == row["config"]).sum())
        for quantity in quantities:
            row[f"{quantity}_mean"] = metrics.loc[members, quantity].mean()
            row[f"{quantity}_std"] = metrics.loc[members, quantity].std(ddof=1)
        if ZERO_FRACTION in quantities:
            row[f"{ZERO_FRACTION}_source"] = "+".join(sorted(set(source[members]) - {""}))
        rows.append(row)
    return pd.DataFrame(rows)
