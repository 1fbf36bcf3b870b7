"""Comparisons at tuned settings: per compared configuration and seed, the tuned point
(e.g. ``regularizer.strength``) with the best validation loss; the test metric is read at that
selection, never selected on test.

A study declares its tuned knobs in its config (``study.tuned: [regularizer.strength]``, logged
as the param ``study.tuned``) or on the report's command line (``--tuned``). Every other
varying param is *compared*. For compared configuration ``c`` and seed ``s`` the selected run is

    argmin over the runs r of (c, s) of  fit/best_val_loss(r)

(the first run of a tie), and the report compares the configurations through their selected
runs only: each regularizer at its tuned strength.
"""

from __future__ import annotations

import json

import pandas as pd

from reglab.report.axes import SEED, configuration_columns, configurations
from reglab.report.store import Sweep

SELECTION_METRIC = "fit/best_val_loss"
TUNED_PARAM = "study.tuned"


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


def select_tuned(
    sweep: Sweep, tuned: list[str], metric: str, selection: str = SELECTION_METRIC
) -> pd.DataFrame:
    """One row per compared configuration and seed: the selected run, its tuned values, its
    ``selection`` value and its ``metric`` (see the module docstring)."""
    finished = sweep.finished()
    columns = compared_columns(sweep, tuned)
    params, metrics = sweep.params.loc[finished], sweep.metrics.loc[finished]
    rows = []
    for key, members in configurations(params, finished, columns):
        seeds = params.loc[members, SEED] if SEED in params else pd.Series("-", index=members)
        for seed, runs in members.groupby(seeds.values).items():
            scores = metrics.loc[runs, selection] if selection in metrics else pd.Series(dtype=float)
            if scores.dropna().empty:
                continue
            chosen = scores.idxmin()
            row = dict(zip(columns, key, strict=True)) | {"seed": seed, "run_id": chosen}
            row |= {knob: params.at[chosen, knob] for knob in tuned}
            row |= {selection: scores[chosen], metric: metrics.at[chosen, metric], "candidates": len(runs)}
            row["tied"] = bool(scores.dropna().nunique() == 1)  # the knob changed nothing (none's strength)
            rows.append(row)
    return pd.DataFrame(rows)


def restricted(sweep: Sweep, run_ids) -> Sweep:
    """``sweep`` with only ``run_ids`` (the selected runs) among its finished runs; failed and
    unfinished runs stay, for the report's account of them."""
    others = sweep.runs.index[sweep.runs.status != "FINISHED"]
    keep = pd.Index(run_ids).append(others)
    return Sweep(
        sweep.experiment,
        sweep.experiment_id,
        sweep.sweep_id,
        sweep.parent_run_id,
        sweep.uri,
        sweep.launches,
        sweep.runs.loc[keep],
        sweep.params.loc[keep],
        sweep.metrics.loc[keep],
        planned=sweep.planned,
        ran=sweep.runs.config_hash.nunique(dropna=True) if sweep.ran is None else sweep.ran,
    )


def tuned_section(
    selection: pd.DataFrame, tuned: list[str], metric: str, columns: list[str], grids: dict | None = None
) -> list[str]:
    """The report's headline: each compared configuration at its tuned point, with the test
    metric at the selection (mean ± sd over seeds) and the selected values; with ``grids`` (the
    values tried per knob) a warning for every configuration that most seeds tuned to an end of
    its grid, where the optimum may lie outside it."""
    from reglab.report.axes import config_label
    from reglab.report.tables import _format, markdown_table

    rows = []
    for key, group in selection.groupby(columns, sort=False) if columns else [((), selection)]:
        key = key if isinstance(key, tuple) else (key,)
        chosen = ", ".join(
            f"{knob}: " + ", ".join(f"{v} ×{n}" for v, n in group[knob].value_counts().items())
            for knob in tuned
        )
        rows.append(
            [
                config_label(columns, key),
                len(group),
                _format(group[metric].mean(), group[metric].std(ddof=1)),
                chosen,
            ]
        )
    return [
        f"## Each configuration at its tuned {', '.join(f'`{t}`' for t in tuned)}",
        "",
        f"Per configuration and seed, the {', '.join(tuned)} with the lowest `{SELECTION_METRIC}` "
        "(validation); "
        f"`{metric}` read at that selection (never selected on test). All comparisons below use the "
        "selected runs only (`tuned_selection.csv`).",
        "",
        markdown_table(["configuration", "seeds", f"{metric} at the selection", "selected"], rows),
        "",
        *edge_warnings(selection, tuned, columns, grids or {}),
    ]


def edge_warnings(selection: pd.DataFrame, tuned: list[str], columns: list[str], grids: dict) -> list[str]:
    """``**At the grid's end**`` lines: configurations whose selection is the smallest or the
    largest value tried for most seeds (seeds whose candidates all scored the same, as
    ``regularizer=none`` at every strength, do not count)."""
    from reglab.report.axes import config_label

    found = []
    for knob in tuned:
        values = sorted(grids.get(knob, []))
        if len(values) < 3:
            continue
        for key, group in selection.groupby(columns, sort=False) if columns else [((), selection)]:
            informative = group[~group.get("tied", False)]
            for end, name in ((values[0], "smallest"), (values[-1], "largest")):
                at_end = int((pd.to_numeric(informative[knob], errors="coerce") == end).sum())
                if len(informative) and at_end > len(informative) / 2:
                    label = config_label(columns, key if isinstance(key, tuple) else (key,))
                    found.append(
                        f"- **At the grid's end**: `{label}` selected the {name} {knob} ({end:g}) for "
                        f"{at_end} of {len(group)} seeds: the best value may lie beyond the grid; extend it."
                    )
    return [*found, ""] if found else []
