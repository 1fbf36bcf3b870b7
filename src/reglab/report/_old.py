"""Ablation report of one sweep: the MLflow store -> tables, figures and paired differences.

    python scripts/report.py                      # the latest sweep of experiment "reglab"
    reglab-report --sweep 20261129-101500-a1b2c3 --metric test/f1

**Configuration**: the params that vary across the sweep's runs, without ``seed`` and
bookkeeping (``data.seed``, which follows ``seed``, ``paths.*``, ``logger.*``, ``resume.*``).
A param that is a function of the ones already shown is not repeated (``model.dropout``
follows ``dropout``, ``regularizer._target_`` and a fixed ``regularizer.strength`` follow
``choice.regularizer``); dropping it never changes which runs are grouped together.

**Per configuration**, over its seeds: mean, sample standard deviation (``ddof=1``; NaN
for one seed) and ``n`` of the test metric (``test/acc``; regression ``test/r2``, else
``test/mse``), the generalization gap at the best epoch (``gap/acc``, else ``gap/loss``),
the last ``weights/zero_fraction`` and the stopped epoch ``fit/epochs``.

**Paired differences** against the baseline (``choice.regularizer = none`` with the same
other params): per seed ``s`` that both have, ``d_s = m(config, s) - m(baseline, s)``; their
mean ``d`` and the 95% t interval ``d +- t(0.975, n-1) * sd(d) / sqrt(n)`` (no interval for
``n = 1``). Pairing by seed removes the variance shared by a seed (split, initialization).

Only FINISHED runs enter the numbers (one per config hash: the latest); FAILED / KILLED
runs are listed with their ``reglab.failure_reason``. A sweep resumed with
``+resume=true`` starts a new parent run and skips what already FINISHED, so such a launch
is read together with the earlier launches it resumed (same ``reglab.sweep_signature``).

Writes ``<output dir>/reports/<sweep id>/``: ``summary.csv``, ``summary.md``,
``paired_differences.csv``, ``heatmap.png``, ``bars.png``, ``val_curves.png``, and logs
them to the sweep's parent run under ``report/``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from reglab import tracking
from reglab.errors import ReportError

PROG = "reglab-report"
ERROR_STATUS = 2
DEFAULT_EXPERIMENT = "reglab"
SEED = "seed"
REGULARIZER = "choice.regularizer"
BASELINE = "none"
MISSING = "-"  # a param a run does not have (regularizer.strength of `none`)
IGNORED_PARAMS = frozenset({SEED, "data.seed"})
IGNORED_PREFIXES = ("paths.", "logger.", "resume.")
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "ece", "error")
ZERO_FRACTION = "weights/zero_fraction"
EPOCHS = "fit/epochs"
VAL_CURVE = "val/loss"
CONFIDENCE = 0.95
REASON_CHARS = 200  # of a failure reason in summary.md (the full one is the run's tag)
REPORT_FILES = ("summary.csv", "summary.md", "paired_differences.csv",
                "heatmap.png", "bars.png", "val_curves.png")


class _UnusedReportError(Exception):
    """What was asked for is not in the store; the message is one line."""


@dataclass
class Sweep:
    """The runs of one sweep, as frames indexed by run id.

    ``runs``: status, start_time, config_hash, failure_reason, run_name.
    ``params``: every param as a string, :data:`MISSING` where a run lacks it.
    ``metrics``: every final (latest) metric, NaN where missing.
    """

    experiment: str
    experiment_id: str
    sweep_id: str
    parent_run_id: str
    uri: str
    launches: int
    runs: pd.DataFrame
    params: pd.DataFrame
    metrics: pd.DataFrame

    def finished(self) -> pd.Index:
        """FINISHED runs, one per config hash (the latest): a rerun does not count twice."""
        done = self.runs[self.runs.status == "FINISHED"].sort_values("start_time")
        hashed = done[done.config_hash.notna()].drop_duplicates("config_hash", keep="last")
        return pd.Index([*hashed.index, *done[done.config_hash.isna()].index])

    def failed(self) -> pd.DataFrame:
        """FAILED / KILLED runs, with ``rerun_finished`` where the same config later FINISHED."""
        bad = self.runs[self.runs.status.isin(["FAILED", "KILLED"])].copy()
        done = set(self.runs.loc[self.runs.status == "FINISHED", "config_hash"].dropna())
        bad["rerun_finished"] = bad.config_hash.isin(done)
        return bad.sort_values("start_time")

    def unfinished(self) -> pd.DataFrame:
        """Runs still RUNNING (or SCHEDULED): a sweep in progress."""
        return self.runs[~self.runs.status.isin(["FINISHED", "FAILED", "KILLED"])]


@dataclass
class Report:
    """What :func:`write_report` wrote (``directory``) and computed."""

    directory: Path
    sweep: Sweep
    metric: str
    summary: pd.DataFrame
    differences: pd.DataFrame
    markdown: str
    artifacts_logged: bool


# --------------------------------------------------------------------------- the store


def open_client(uri: str):
    """An MLflow client on an existing store (a missing SQLite file is an error, not a new store)."""
    tracking.disable_telemetry()
    database = tracking.sqlite_path(uri)
    if database is not None and not database.exists():
        raise ReportError(f"no MLflow store at {database} (run a sweep first, or pass --tracking-uri "
                          "or --output-dir)")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking.connection_uri(uri))


def _search(client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def load_sweep(uri: str, experiment: str = DEFAULT_EXPERIMENT, sweep_id: str | None = None) -> Sweep:
    """The sweep ``sweep_id`` (its ``reglab.sweep_id`` tag or parent run id; default: the
    latest sweep) of ``experiment`` in the store at ``uri``."""
    client = open_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"no experiment {experiment!r} in {uri} "
                          f"(experiments: {', '.join(names) or 'none'})")
    experiment_id = found.experiment_id
    parents = _search(client, experiment_id, "tags.`reglab.kind` = 'sweep'")
    if not parents:
        raise ReportError(f"experiment {experiment!r} has no sweeps (no parent run tagged reglab.kind="
                          "sweep); start one with: python train.py -m regularizer=none,l2 seed=1,2,3")
    if sweep_id is None:
        parent = parents[0]
    else:
        matches = [p for p in parents if sweep_id in (p.data.tags.get("reglab.sweep_id"), p.info.run_id)]
        if not matches:
            names = [p.data.tags.get("reglab.sweep_id", p.info.run_id) for p in parents]
            shown = ", ".join(names[:20]) + (f" (+{len(names) - 20} more)" if len(names) > 20 else "")
            raise ReportError(f"no sweep {sweep_id!r} in experiment {experiment!r}; "
                              f"available (newest first): {shown}")
        parent = matches[0]
    tags = parent.data.tags
    name = tags.get("reglab.sweep_id", parent.info.run_id)
    launches = _launches(parents, parent)
    children = {}
    for launch in launches:
        filters = [f"tags.`mlflow.parentRunId` = '{_quoted(launch.info.run_id)}'"]
        if launch.data.tags.get("reglab.sweep_id"):
            filters.append(f"tags.`reglab.sweep_id` = '{_quoted(launch.data.tags['reglab.sweep_id'])}'")
        for filter_string in filters:
            for run in _search(client, experiment_id, filter_string):
                if run.data.tags.get("reglab.kind") != "sweep":
                    children.setdefault(run.info.run_id, run)
    if not children:
        raise ReportError(f"sweep {name!r} of experiment {experiment!r} has no runs yet")
    return Sweep(experiment, experiment_id, name, parent.info.run_id, uri, len(launches),
                 *_frames(children.values()))


def _resumed(run) -> bool:
    overrides = run.data.tags.get("reglab.overrides", "").split()
    return any(o.lstrip("+~").startswith("resume=") and o.split("=", 1)[1].lower() not in ("false", "0")
               for o in overrides)


def _launches(parents: list, parent) -> list:
    """``parent`` and, while it was a ``+resume=true`` launch, the earlier launches with the
    same sweep signature (newest first) back to the one that started the sweep."""
    launches = [parent]
    signature = parent.data.tags.get("reglab.sweep_signature")
    earlier = [p for p in parents if signature and p.data.tags.get("reglab.sweep_signature") == signature
               and p.info.start_time < parent.info.start_time]
    for previous in earlier:  # parents are newest first
        if not _resumed(launches[-1]):
            break
        launches.append(previous)
    return launches


def _frames(runs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs = list(runs)
    ids = [r.info.run_id for r in runs]
    info = pd.DataFrame({
        "status": [r.info.status for r in runs],
        "start_time": [r.info.start_time or 0 for r in runs],
        "config_hash": [r.data.tags.get("reglab.config_hash") for r in runs],
        "failure_reason": [r.data.tags.get("reglab.failure_reason", "") for r in runs],
        "run_name": [r.data.tags.get("mlflow.runName", r.info.run_name or "") for r in runs],
    }, index=pd.Index(ids, name="run_id"))
    params = pd.DataFrame([r.data.params for r in runs], index=info.index, dtype=object)
    params = params.reindex(columns=sorted(params.columns)).fillna(MISSING).astype(object)
    metrics = pd.DataFrame([r.data.metrics for r in runs], index=info.index, dtype=float)
    return info, params, metrics


def val_histories(sweep: Sweep, run_ids, key: str = VAL_CURVE) -> dict[str, pd.Series]:
    """Per run, ``key`` by epoch (the MLflow step)."""
    client = open_client(sweep.uri)
    histories = {}
    for run_id in run_ids:
        points = client.get_metric_history(run_id, key)
        if points:
            series = pd.Series({p.step: p.value for p in sorted(points, key=lambda p: p.timestamp)})
            histories[run_id] = series.sort_index()
    return histories


# --------------------------------------------------------------------------- what varies


def _is_config_param(name: str) -> bool:
    return name not in IGNORED_PARAMS and not name.startswith(IGNORED_PREFIXES)


def _priority(name: str) -> tuple:
    """Order in which params are shown: regularizer, other groups, top-level knobs, nested keys."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf.startswith("_"):
        rank = 9  # _target_, _partial_: follow the group's option
    elif name == REGULARIZER:
        rank = 0
    elif name.startswith("choice."):
        rank = 1
    else:
        rank = 2 + name.count(".")
    return rank, name


def varying_params(params: pd.DataFrame) -> list[str]:
    """Params (other than seed and bookkeeping) with more than one value across the runs."""
    return sorted((c for c in params.columns if _is_config_param(c) and params[c].nunique() > 1),
                  key=_priority)


def _determined(params: pd.DataFrame, by: list[str], column: str) -> bool:
    return bool(params.groupby(by, sort=False)[column].nunique().max() <= 1)


def configuration_columns(params: pd.DataFrame) -> list[str]:
    """The varying params that identify a configuration, each not a function of the ones
    before it (in :func:`_priority` order); they group runs exactly as all varying params do."""
    kept: list[str] = []
    for column in varying_params(params):
        if not kept or not _determined(params, kept, column):
            kept.append(column)
    return kept


def display_name(param: str) -> str:
    return param.removeprefix("choice.")


def value_key(value) -> tuple:
    """Sort key: the baseline `none` first, numbers by value, then strings."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return (0 if text == BASELINE else 2, 0.0, text)
    return (1, number, text)


def config_label(columns: list[str], values) -> str:
    pairs = [f"{display_name(c)}={v}" for c, v in zip(columns, values, strict=True)]
    return ", ".join(pairs) or "all runs"


def configurations(params: pd.DataFrame, run_ids, columns: list[str]) -> list[tuple[tuple, pd.Index]]:
    """``(values of columns, run ids)`` per configuration among ``run_ids``, in display order."""
    run_ids = pd.Index(run_ids)
    if not columns:
        return [((), run_ids)] if len(run_ids) else []
    groups = params.loc[run_ids, columns].groupby(columns, sort=False).groups
    pairs = [(key if isinstance(key, tuple) else (key,), pd.Index(members))
             for key, members in groups.items()]
    return sorted(pairs, key=lambda pair: [value_key(v) for v in pair[0]])


def detect_metric(metrics: pd.DataFrame) -> str:
    """``test/acc`` (classification), else ``test/r2``, else ``test/mse`` (regression)."""
    for candidate in ("test/acc", "test/r2", "test/mse"):
        if candidate in metrics and metrics[candidate].notna().any():
            return candidate
    available = sorted(c for c in metrics.columns if c.startswith("test/"))
    raise ReportError(f"no test/acc, test/r2 or test/mse in the finished runs; pass --metric "
                      f"(test metrics: {', '.join(available) or 'none'})")


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1].lower().endswith(LOWER_IS_BETTER)


def gap_metric(metrics: pd.DataFrame) -> str | None:
    for candidate in ("gap/acc", "gap/loss"):
        if candidate in metrics and metrics[candidate].notna().any():
            return candidate
    return None


# --------------------------------------------------------------------------- numbers


def t_interval(differences, confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """``(mean, sample std, low, high)`` of the mean with a Student t interval; the interval
    (and std) is NaN for fewer than two values, everything is NaN for none."""
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


def summarize(sweep: Sweep, metric: str, columns: list[str]) -> pd.DataFrame:
    """One row per configuration: its params, ``n`` and mean / std of each quantity."""
    finished = sweep.finished()
    quantities = [q for q in (metric, gap_metric(sweep.metrics), ZERO_FRACTION, EPOCHS)
                  if q is not None and q in sweep.metrics]
    values = sweep.metrics.loc[finished, quantities]
    rows = []
    for key, members in configurations(sweep.params, finished, columns):
        row = {display_name(c): v for c, v in zip(columns, key, strict=True)}
        row["config"] = config_label(columns, key)
        row["n"] = int(values.loc[members, metric].notna().sum())
        for quantity in quantities:
            row[f"{quantity}_mean"] = values.loc[members, quantity].mean()
            row[f"{quantity}_std"] = values.loc[members, quantity].std(ddof=1)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(sweep: Sweep, metric: str, columns: list[str]) -> pd.DataFrame:
    """Per configuration with a baseline: per-seed differences to it, their mean and t interval."""
    header = [*(display_name(c) for c in columns), "config", "baseline", "n", "seeds", "differences",
              "mean_difference", "std_difference", "ci95_low", "ci95_high", "config_mean",
              "baseline_mean", "verdict"]
    params = sweep.params
    if REGULARIZER not in params or SEED not in params:
        return pd.DataFrame(columns=header)
    finished = sweep.finished()
    match = [c for c in varying_params(params) if c != REGULARIZER and not c.startswith("regularizer.")]
    frame = params.loc[finished, [*dict.fromkeys([*columns, *match, REGULARIZER, SEED])]].copy()
    frame["value"] = sweep.metrics.loc[finished, metric]
    frame = frame[frame["value"].notna()]
    frame["match"] = [tuple(row) for row in frame[match].itertuples(index=False)]
    baseline = frame[frame[REGULARIZER] == BASELINE]
    base_value = baseline.groupby(["match", SEED])["value"].mean().to_dict()
    base_label = {m: config_label(columns, g.iloc[0][columns]) for m, g in baseline.groupby("match")}
    rows = []
    for key, members in configurations(params, frame.index[frame[REGULARIZER] != BASELINE], columns):
        group = frame.loc[members]
        match_key = group["match"].iloc[0]
        if match_key not in base_label:
            continue
        per_seed = group.groupby(SEED)["value"].mean()
        seeds = sorted((s for s in per_seed.index if (match_key, s) in base_value), key=value_key)
        diffs = [float(per_seed[s] - base_value[(match_key, s)]) for s in seeds]
        mean, std, low, high = t_interval(diffs)
        rows.append({
            **{display_name(c): v for c, v in zip(columns, key, strict=True)},
            "config": config_label(columns, key), "baseline": base_label[match_key], "n": len(diffs),
            "seeds": json.dumps([_number(s) for s in seeds]), "differences": json.dumps(diffs),
            "mean_difference": mean, "std_difference": std, "ci95_low": low, "ci95_high": high,
            "config_mean": _mean([per_seed[s] for s in seeds]),
            "baseline_mean": _mean([base_value[(match_key, s)] for s in seeds]),
            "verdict": verdict(len(diffs), low, high, metric),
        })
    return pd.DataFrame(rows, columns=header)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def verdict(n: int, low: float, high: float, metric: str) -> str:
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


# --------------------------------------------------------------------------- text


def _format(mean: float, std: float = math.nan, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    text = f"{mean:.{digits}g}"
    return text if std is None or math.isnan(std) else f"{text} ± {std:.2g}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_markdown(summary: pd.DataFrame, metric: str, columns: list[str]) -> str:
    names = [display_name(c) for c in columns] or ["config"]
    quantities = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    means = summary[f"{metric}_mean"]
    best = means.idxmin() if lower_is_better(metric) else means.idxmax()
    rows = []
    for i, row in summary.iterrows():
        cells = [row[name] for name in names] + [row["n"]]
        for quantity in quantities:
            text = _format(row[f"{quantity}_mean"], row[f"{quantity}_std"])
            cells.append(f"**{text}**" if quantity == metric and i == best else text)
        rows.append(cells)
    return markdown_table([*names, "n", *quantities], rows)


def differences_markdown(differences: pd.DataFrame, metric: str) -> str:
    rows = []
    for _, row in differences.iterrows():
        interval = (MISSING if math.isnan(row["ci95_low"])
                    else f"[{row['ci95_low']:+.3g}, {row['ci95_high']:+.3g}]")
        diffs = ", ".join(f"{d:+.3g}" for d in json.loads(row["differences"]))
        mean = MISSING if math.isnan(row["mean_difference"]) else f"{row['mean_difference']:+.3g}"
        rows.append([row["config"], row["baseline"], row["n"], mean, interval, diffs, row["verdict"]])
    return markdown_table(["config", "baseline", "n", f"mean Δ {metric}", "95% CI", "per-seed Δ", "verdict"],
                          rows)


def _document(sweep: Sweep, metric: str, columns: list[str], summary: pd.DataFrame,
              differences: pd.DataFrame, tables: tuple[str, str]) -> str:
    finished, failed, unfinished = sweep.finished(), sweep.failed(), sweep.unfinished()
    direction = "lower" if lower_is_better(metric) else "higher"
    launched = f", {sweep.launches} launches (resumed)" if sweep.launches > 1 else ""
    lines = [
        f"# Ablation report: sweep {sweep.sweep_id}",
        "",
        f"- experiment `{sweep.experiment}`, parent run `{sweep.parent_run_id}`{launched}, "
        f"store `{sweep.uri}`",
        f"- runs: {len(sweep.runs)} ({len(finished)} finished and counted, {len(failed)} failed/killed, "
        f"{len(unfinished)} not finished)",
        f"- metric: `{metric}` ({direction} is better); mean ± sample std (ddof=1) over seeds; "
        f"`{ZERO_FRACTION}` at the last epoch; `{EPOCHS}` = epochs trained",
        f"- configuration: {', '.join(f'`{c}`' for c in columns) or 'one configuration'} "
        "(the params that vary, seed aside)",
        f"- generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "## Configurations",
        "",
        tables[0],
        "## Paired differences against the `none` regularizer",
        "",
    ]
    if differences.empty:
        lines += ["No configuration has a `none`-regularizer baseline with the same other params "
                  "in this sweep: no paired differences.", ""]
    else:
        lines += [
            f"Δ = {metric}(configuration) − {metric}(baseline) on the same seed; {direction} {metric} is "
            f"better, so a {'negative' if direction == 'lower' else 'positive'} Δ favours the configuration. "
            f"95% CI: mean Δ ± t(0.975, n−1)·sd(Δ)/√n over the n paired seeds.",
            "",
            tables[1],
        ]
        if (differences["n"] < 2).any():
            lines += ["With n = 1 paired seed there is no interval (NaN): run more seeds "
                      "(`seed=1,2,3`) before calling a difference.", ""]
    if "regularizer" in summary and not differences.empty:
        paired = summary.config.isin(differences.config)
        unpaired = summary.config[(summary.regularizer != BASELINE) & ~paired]
        if len(unpaired):
            lines += [f"No baseline with the same other params for: {'; '.join(unpaired)}.", ""]
    lines += ["## Failed and killed runs", ""]
    if failed.empty:
        lines += ["None.", ""]
    else:
        rows = []
        for run_id, run in failed.iterrows():
            config = config_label(columns, sweep.params.loc[run_id, columns]) if columns else run["run_name"]
            seed = sweep.params.loc[run_id].get(SEED, MISSING)
            rerun = " (rerun FINISHED later)" if run["rerun_finished"] else ""
            reason = run["failure_reason"] or MISSING
            reason = reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"
            rows.append([config, seed, run["status"] + rerun, reason, run_id])
        lines += ["Excluded from every number above.", "",
                  markdown_table(["config", "seed", "status", "reason", "run"], rows)]
    if not unfinished.empty:
        lines += [f"{len(unfinished)} runs not finished yet (status "
                  f"{', '.join(sorted(set(unfinished.status)))}): excluded.", ""]
    lines += ["## Figures", "", "![heatmap](heatmap.png)", "", "![bars](bars.png)", "",
              "![validation loss](val_curves.png)", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global backend state (Agg canvas)

    return Figure(figsize=(width, height), layout="constrained")


def plot_heatmap(sweep: Sweep, metric: str, columns: list[str], path: Path) -> None:
    """Mean metric over regularizer x dropout, one panel per batchnorm value."""
    finished = sweep.finished()
    params = sweep.params.reindex(columns=[REGULARIZER, "dropout", "batchnorm"], fill_value=MISSING)
    frame = params.loc[finished].copy()
    frame["value"] = sweep.metrics.loc[finished, metric]
    rows = sorted(frame[REGULARIZER].unique(), key=value_key)
    cols = sorted(frame["dropout"].unique(), key=value_key)
    panels = sorted(frame["batchnorm"].unique(), key=value_key)
    averaged = [display_name(c) for c in columns if c not in (REGULARIZER, "dropout", "batchnorm")]
    fig = _figure(1.4 + 1.3 * len(cols) * len(panels) + 1.0, 1.4 + 0.55 * len(rows))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    grids = [frame[frame.batchnorm == p].pivot_table(index=REGULARIZER, columns="dropout", values="value",
                                                      aggfunc="mean").reindex(index=rows, columns=cols)
             for p in panels]
    low = np.nanmin([np.nanmin(g.to_numpy()) if g.notna().any().any() else np.nan for g in grids])
    high = np.nanmax([np.nanmax(g.to_numpy()) if g.notna().any().any() else np.nan for g in grids])
    cmap = "viridis_r" if lower_is_better(metric) else "viridis"
    image = None
    for ax, panel, grid in zip(axes, panels, grids, strict=True):
        data = grid.to_numpy(dtype=float)
        image = ax.imshow(data, cmap=cmap, vmin=low, vmax=high, aspect="auto")
        ax.set_xticks(range(len(cols)), labels=cols)
        ax.set_yticks(range(len(rows)), labels=rows)
        ax.set_xlabel("dropout")
        if ax is axes[0]:
            ax.set_ylabel("regularizer")
        ax.set_title(f"batchnorm={panel}", fontsize=9)
        middle = (low + high) / 2
        for (i, j), value in np.ndenumerate(data):
            if not math.isnan(value):
                dark = (value < middle) != lower_is_better(metric)
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=list(axes), label=f"mean {metric}")
    title = f"mean {metric} over seeds"
    if averaged:
        title += f" (averaged over {', '.join(averaged)})"
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)


def plot_bars(summary: pd.DataFrame, metric: str, path: Path) -> None:
    """Mean metric per configuration, error bars one sample std over seeds."""
    means = summary[f"{metric}_mean"].to_numpy(dtype=float)
    stds = np.nan_to_num(summary[f"{metric}_std"].to_numpy(dtype=float))
    labels = [f"{c} (n={n})" for c, n in zip(summary["config"], summary["n"], strict=True)]
    fig = _figure(8, 1.2 + 0.35 * len(labels))
    ax = fig.subplots()
    positions = np.arange(len(labels))[::-1]
    ax.barh(positions, means, xerr=stds, color="tab:blue", alpha=0.8, capsize=3)
    ax.set_yticks(positions, labels=labels, fontsize=8)
    finite = np.isfinite(means)
    if finite.any():
        low, high = np.min((means - stds)[finite]), np.max((means + stds)[finite])
        margin = 0.15 * (high - low) or 0.05 * abs(high) or 0.1
        if low > 0 and low - margin > 0 and (high - low) < 0.5 * high:
            ax.set_xlim(low - margin, high + margin)  # zoomed: differences are small next to the values
    ax.set_xlabel(f"{metric} (mean ± std over seeds)")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=120)


def plot_val_curves(sweep: Sweep, columns: list[str], path: Path) -> None:
    """Validation loss per epoch, mean over the seeds still training, one line per configuration."""
    from matplotlib.ticker import MaxNLocator

    finished = sweep.finished()
    histories = val_histories(sweep, finished)
    fig = _figure(8, 4.5)
    ax = fig.subplots()
    for key, members in configurations(sweep.params, finished, columns):
        curves = [histories[m] for m in members if m in histories]
        if not curves:
            continue
        mean = pd.concat(curves, axis=1).mean(axis=1)
        ax.plot(mean.index, mean.to_numpy(), lw=1.4, marker="." if len(mean) < 30 else None,
                label=f"{config_label(columns, key)} (n={len(curves)})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{VAL_CURVE} (mean over seeds)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120)


# --------------------------------------------------------------------------- entry points


def default_output_dir(uri: str) -> Path:
    """The checkout's ``outputs/`` (the folder beside ``conf/``); for a SQLite store found
    elsewhere, the store's folder."""
    database = tracking.sqlite_path(uri)
    try:
        from reglab.config import find_config_dir

        outputs = find_config_dir().parent / "outputs"
    except FileNotFoundError:
        outputs = Path.cwd() / "outputs"
    if database is not None and database.resolve().parent != outputs.resolve():
        return database.resolve().parent
    return outputs


def write_report(
    uri: str,
    sweep_id: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    output_dir: str | Path | None = None,
    metric: str | None = None,
    log_artifacts: bool = True,
) -> Report:
    """Read the sweep from the store at ``uri``, write the report files to
    ``<output_dir>/reports/<sweep id>/`` and (``log_artifacts``) log them to the sweep's parent
    run under ``report/``. Raises :class:`ReportError` for what is not in the store."""
    sweep = load_sweep(uri, experiment, sweep_id)
    directory = Path(output_dir or default_output_dir(uri)) / "reports" / re.sub(r"[^\w.-]", "_",
                                                                                   sweep.sweep_id)
    finished = sweep.finished()
    if len(finished) == 0:
        raise ReportError(f"sweep {sweep.sweep_id!r} has no finished runs ({len(sweep.failed())} "
                          f"failed/killed, {len(sweep.unfinished())} not finished)")
    metrics = sweep.metrics.loc[finished]
    metric = metric or detect_metric(metrics)
    if metric not in metrics or metrics[metric].isna().all():
        available = sorted(c for c in metrics.columns if "/" in c and not c.startswith(("train/", "val/")))
        raise ReportError(f"no metric {metric!r} in the finished runs of sweep {sweep.sweep_id!r} "
                          f"(final metrics: {', '.join(available)})")
    columns = configuration_columns(sweep.params)
    summary = summarize(sweep, metric, columns)
    differences = paired_differences(sweep, metric, columns)
    tables = (summary_markdown(summary, metric, columns), differences_markdown(differences, metric))
    text = _document(sweep, metric, columns, summary, differences, tables)

    directory.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        (directory / name).unlink(missing_ok=True)
    summary.to_csv(directory / "summary.csv", index=False)
    differences.to_csv(directory / "paired_differences.csv", index=False)
    (directory / "summary.md").write_text(text)
    plot_heatmap(sweep, metric, columns, directory / "heatmap.png")
    plot_bars(summary, metric, directory / "bars.png")
    plot_val_curves(sweep, columns, directory / "val_curves.png")
    if log_artifacts:
        client = open_client(uri)
        client.log_artifacts(sweep.parent_run_id, str(directory), artifact_path="report")
    return Report(directory, sweep, metric, summary, differences, text, log_artifacts)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Ablation table, figures and paired differences of one sweep "
        "from the MLflow store (see reglab.report).")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment (reglab)")
    parser.add_argument("--sweep", default=None, help="sweep id (tag reglab.sweep_id) or parent run id; "
                        "default: the latest sweep")
    parser.add_argument("--tracking-uri", default=None, help="store (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///<output dir>/mlflow.db)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="outputs folder (default: outputs/ beside conf/); the report goes to "
                        "<output dir>/reports/<sweep id>/")
    parser.add_argument("--metric", default=None, help="test metric to compare (default: test/acc, "
                        "regression test/r2 or test/mse)")
    parser.add_argument("--no-artifacts", action="store_true",
                        help="do not log the files to the sweep's parent run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``reglab-report`` / ``python scripts/report.py``: 0 on success, 2 with one line on stderr."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output_dir = args.output_dir
    if output_dir is None:
        try:
            from reglab.config import find_config_dir

            output_dir = find_config_dir().parent / "outputs"
        except FileNotFoundError:
            output_dir = Path.cwd() / "outputs"
    uri = tracking.resolve_tracking_uri(args.tracking_uri, output_dir)
    try:
        report = write_report(uri, args.sweep, args.experiment, output_dir, args.metric,
                              log_artifacts=not args.no_artifacts)
    except ReportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return ERROR_STATUS
    sweep = report.sweep
    print(f"sweep {sweep.sweep_id} of experiment {sweep.experiment}: {len(sweep.finished())} finished runs, "
          f"{len(sweep.failed())} failed/killed; metric {report.metric}")
    print()
    print(summary_markdown(report.summary, report.metric, configuration_columns(sweep.params)))
    if not report.differences.empty:
        print(differences_markdown(report.differences, report.metric))
    print(f"wrote {', '.join(REPORT_FILES)} to {report.directory}")
    if report.artifacts_logged:
        print(f"logged to MLflow run {sweep.parent_run_id} under report/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
