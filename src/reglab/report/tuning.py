"""Comparisons at tuned settings: per compared configuration and seed, the tuned point
(e.g. ``regularizer.strength``) that scored best on validation; the test metric is read at that
selection, never selected on test.

A study declares its tuned knobs in its config (``study.tuned: [regularizer.strength]``, logged
as the param ``study.tuned``) or on the report's command line (``--tuned``). Every other
varying param is *compared*. For compared configuration ``c`` and seed ``s`` the selected run is

    best over the runs r of (c, s) of  fit/selection_score(r)

where ``fit/selection_score`` is the value, at the tested epoch, of the monitor that chose the
tested weights (``callbacks.best_weights.monitor`` with its ``mode``; ``val/loss``, lower is
better, when the last epoch is tested), so the selection and the tested weights follow one rule;
runs logged before it existed are selected on ``fit/best_val_loss``. Ties go to the first run.

**Equal budgets.** A knob a configuration ignores (``regularizer.strength`` of
``regularizer=none``, :data:`IGNORED_KNOBS`) is not a candidate: its runs repeat one setting,
and only the first (the smallest value) is a candidate, so ``none`` is not given a best-of-k
choice on validation that the others earn by tuning. The candidates per arm are reported.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd

from reglab.report.axes import SEED, configuration_columns, configurations, value_key
from reglab.report.store import MISSING, Sweep

SELECTION_METRIC = "fit/selection_score"
LEGACY_SELECTION = "fit/best_val_loss"
TUNED_PARAM = "study.tuned"
MONITOR, MODE = "callbacks.best_weights.monitor", "callbacks.best_weights.mode"
# knobs a regularizer ignores, by its _target_ (NoPenalty's docstring: "accepts and ignores a strength")
IGNORED_KNOBS = {"reglab.regularizers.NoPenalty": ("regularizer.strength",)}


def declared_tuned(sweep: Sweep, extra: list[str] | None = None) -> list[str]:
    """The tuned knobs: those the runs' ``study.tuned`` param declares, plus ``extra``."""
    tuned = list(extra or [])
    if TUNED_PARAM in sweep.params:
        for text in sweep.params.loc[sweep.finished(), TUNED_PARAM].dropna().unique():
            try:
                tuned += [str(key) for key in json.loads(text)]
            except (json.JSONDecodeError, TypeError):
                continue
    return list(dict.fromkeys(k for k in tuned if k in sweep.params))


def compared_columns(sweep: Sweep, tuned: list[str]) -> list[str]:
    """The axes of the comparison: the configuration columns once the tuned knobs are set aside."""
    params = sweep.params.loc[sweep.finished()]
    return configuration_columns(params.drop(columns=[t for t in tuned if t in params]))


def selection_scores(sweep: Sweep, runs: pd.Index) -> tuple[pd.Series, str]:
    """Per run, its selection score oriented so that lower is better, and the rule in words."""
    metrics, params = sweep.metrics.loc[runs], sweep.params.loc[runs]
    if SELECTION_METRIC not in metrics or metrics[SELECTION_METRIC].isna().all():
        scores = metrics.get(LEGACY_SELECTION, pd.Series(float("nan"), index=runs))
        return scores, f"the lowest `{LEGACY_SELECTION}`"
    maximize = params.get(MODE, pd.Series("min", index=runs)).eq("max")
    scores = metrics[SELECTION_METRIC].where(~maximize, -metrics[SELECTION_METRIC])
    monitors = params.get(MONITOR, pd.Series("val/loss", index=runs)).replace(MISSING, "val/loss")
    rules = sorted(
        {f"{'highest' if m else 'lowest'} `{name}`" for name, m in zip(monitors, maximize, strict=True)}
    )
    return scores, "the " + " / ".join(rules) + " at the tested epoch"


def ignored_knobs(params: pd.DataFrame, runs, tuned: list[str]) -> list[str]:
    """The tuned knobs that the configuration of ``runs`` ignores (:data:`IGNORED_KNOBS`)."""
    targets = set(params.loc[runs].get("regularizer._target_", pd.Series(dtype=object)))
    return [k for target in targets for k in IGNORED_KNOBS.get(target, ()) if k in tuned]


def select_tuned(sweep: Sweep, tuned: list[str], metric: str) -> pd.DataFrame:
    """One row per compared configuration and seed: the selected run, its tuned values, its
    score, its ``metric``, ``candidates`` (the settings it was selected among) and ``ignored``
    (the tuned knobs it ignores); see the module docstring."""
    finished = sweep.finished()
    columns = compared_columns(sweep, tuned)
    params, metrics = sweep.params.loc[finished], sweep.metrics.loc[finished]
    scores, _ = selection_scores(sweep, finished)
    rows = []
    for key, members in configurations(params, finished, columns):
        ignored = ignored_knobs(params, members, tuned)
        used = [k for k in tuned if k not in ignored]
        seeds = params.loc[members, SEED] if SEED in params else pd.Series("-", index=members)
        for seed, runs in members.groupby(seeds.values).items():
            candidates = _candidates(params, pd.Index(runs), used, ignored)
            valid = scores[candidates].dropna()
            if valid.empty:
                continue
            chosen = valid.idxmin()
            row = dict(zip(columns, key, strict=True)) | {"seed": seed, "run_id": chosen}
            row |= {knob: params.at[chosen, knob] for knob in tuned}
            row |= {"selection_score": scores[chosen], metric: metrics.at[chosen, metric]}
            row |= {"candidates": len(candidates), "ignored": ",".join(ignored)}
            rows.append(row)
    return pd.DataFrame(rows)


def _candidates(params: pd.DataFrame, runs: pd.Index, used: list[str], ignored: list[str]) -> pd.Index:
    """One run per setting of the ``used`` knobs: of runs that differ only in ``ignored`` knobs,
    the one with the smallest ignored values."""
    if not ignored:
        return runs
    order = sorted(runs, key=lambda r: [value_key(params.at[r, k]) for k in ignored])
    frame = params.loc[order, used] if used else pd.DataFrame(index=order)
    kept = frame[~frame.duplicated()].index if used else pd.Index(order[:1])
    return pd.Index(kept)


def tried_grids(sweep: Sweep, tuned: list[str], columns: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per compared configuration (its label), the values of each tuned knob its runs tried
    (finished or failed): the grid a selection is at the end of."""
    from reglab.report.axes import config_label

    tried = sweep.runs.index[sweep.runs.status.isin(["FINISHED", "FAILED", "KILLED"])]
    params = sweep.params.loc[tried]
    grids = {}
    for key, members in configurations(params, tried, columns):
        values = {
            k: sorted(pd.to_numeric(params.loc[members, k], errors="coerce").dropna().unique()) for k in tuned
        }
        grids[config_label(columns, key)] = values
    return grids


def restricted(sweep: Sweep, run_ids) -> Sweep:
    """``sweep`` with only ``run_ids`` (the selected runs) among its finished runs; failed and
    unfinished runs stay, for the report's account of them."""
    others = sweep.runs.index[sweep.runs.status != "FINISHED"]
    keep = pd.Index(run_ids).append(others)
    return replace(
        sweep,
        runs=sweep.runs.loc[keep],
        params=sweep.params.loc[keep],
        metrics=sweep.metrics.loc[keep],
        ran=sweep.runs.config_hash.nunique(dropna=True) if sweep.ran is None else sweep.ran,
    )


def tuned_section(
    selection: pd.DataFrame,
    tuned: list[str],
    metric: str,
    columns: list[str],
    grids: dict[str, dict[str, list[float]]],
    rule: str,
) -> list[str]:
    """The report's headline: each compared configuration at its tuned point, with the test
    metric at the selection (mean ± sd over seeds), the candidates it was tuned over and the
    selected values; ``grids`` (:func:`tried_grids`) give the grid's-end warnings."""
    from reglab.report.axes import config_label
    from reglab.report.tables import _format, markdown_table

    rows = []
    for key, group in selection.groupby(columns, sort=False) if columns else [((), selection)]:
        key = key if isinstance(key, tuple) else (key,)
        ignored = set(",".join(group["ignored"]).split(",")) - {""}
        chosen = "; ".join(
            f"{knob}: " + ", ".join(f"{v} ×{n}" for v, n in group[knob].value_counts().items())
            for knob in tuned
            if knob not in ignored
        )
        candidates = sorted(set(group["candidates"]))
        rows.append(
            [
                config_label(columns, key),
                len(group),
                "/".join(map(str, candidates)),
                _format(group[metric].mean(), group[metric].std(ddof=1)),
                chosen or "(ignores " + ", ".join(sorted(ignored)) + ")",
            ]
        )
    return [
        f"## Each configuration at its tuned {', '.join(f'`{t}`' for t in tuned)}",
        "",
        f"Per configuration and seed, the {', '.join(tuned)} with {rule} (validation); "
        f"`{metric}` read at that selection (never selected on test). *candidates*: the settings each "
        "arm was tuned over (a knob an arm ignores is not a candidate). All comparisons below use the "
        "selected runs only (`tuned_selection.csv`).",
        "",
        markdown_table(
            ["configuration", "seeds", "candidates", f"{metric} at the selection", "selected"], rows
        ),
        "",
        *edge_warnings(selection, tuned, columns, grids),
    ]


def edge_warnings(
    selection: pd.DataFrame, tuned: list[str], columns: list[str], grids: dict[str, dict[str, list[float]]]
) -> list[str]:
    """``**At the grid's end**`` lines: configurations whose selection is the smallest or the
    largest value of the grid that *that configuration tried* for most seeds; a knob the
    configuration ignores is never flagged."""
    from reglab.report.axes import config_label

    found = []
    for key, group in selection.groupby(columns, sort=False) if columns else [((), selection)]:
        label = config_label(columns, key if isinstance(key, tuple) else (key,))
        ignored = set(",".join(group["ignored"]).split(",")) - {""}
        for knob in tuned:
            values = grids.get(label, {}).get(knob, [])
            if knob in ignored or len(values) < 3:
                continue
            selected = pd.to_numeric(group[knob], errors="coerce")
            for end, name in ((values[0], "smallest"), (values[-1], "largest")):
                at_end = int((selected == end).sum())
                if at_end > len(group) / 2:
                    found.append(
                        f"- **At the grid's end**: `{label}` selected the {name} {knob} tried ({end:g}) for "
                        f"{at_end} of {len(group)} seeds: the best value may lie beyond the grid; extend it."
                    )
    return [*found, ""] if found else []
