"""Which comparisons the report makes, each once, decided by one rule (:mod:`.decisions`).

**Factors.** The axes (:mod:`reglab.report.axes`) group into factors: a group's choice with the
params of that group (``choice.regularizer`` with ``regularizer.l1_ratio`` and, when not tuned,
``regularizer.strength``: ``elastic, l1_ratio=0.5`` is one level), every other axis on its own
(``dropout``, ``batchnorm``, ``optimizer.lr``, ...).

**Compared factors and context.** The family of tests holds the questions a regularization
study asks: every factor except the *context* ones, the model, the data and the trainer
(:data:`CONTEXT_GROUPS`: ``model=mlp vs cnn1d`` or ``data.design`` describe where a question is
asked, not a question). ``--compare KEY`` makes a context factor a compared one; a sweep that
varies only context factors compares them. Context values are still every comparison's
"others fixed at".

**Factor comparisons** (``factor_effects.csv``, the Answer, ``forest.png``): each level of each
compared factor against the factor's baseline level (``--baseline`` where it names the factor,
else ``none`` for the regularizer, else its first level), all other axes fixed, paired by seed.

**Baseline comparisons** (``paired_differences.csv``): each configuration against the baseline
configuration with its values of the other axes (:func:`reglab.report.axes.matched_columns`).
Most are factor comparisons too; a ``--baseline`` that fixes two factors adds compound ones.

Every distinct (configuration, reference) pair is tested once and decided once, so the same
comparison reads the same in every file.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from reglab.errors import ReportError
from reglab.report.axes import (
    SEED,
    config_label,
    configurations,
    display_name,
    is_baseline,
    levels,
    matched_columns,
    value_key,
)
from reglab.report.decisions import decide, replication, test_differences
from reglab.report.store import MISSING, Sweep

CONTEXT_GROUPS = ("model", "data", "trainer")


def _group_of(column: str) -> str:
    return display_name(column).split(".", 1)[0]


def is_context(column: str, compare: list[str] | tuple = ()) -> bool:
    """Whether ``column`` belongs to a context group (model, data, trainer) and is not named
    by ``compare``."""
    named = {display_name(c) for c in compare}
    return _group_of(column) in CONTEXT_GROUPS and display_name(column) not in named


def factor_groups(columns: list[str]) -> list[list[str]]:
    """The factors: ``[choice.<g>, <g>.* axes]`` for each group choice, else one axis each."""
    choices = {display_name(c) for c in columns if c.startswith("choice.")}
    groups = []
    for column in columns:
        if column.startswith("choice."):
            name = display_name(column)
            groups.append([column, *(c for c in columns if c.startswith(f"{name}."))])
        elif _group_of(column) not in choices or "." not in column:
            groups.append([column])
    return groups


def compared_factors(columns: list[str], compare: list[str] | tuple = ()) -> list[list[str]]:
    """The factors in the family (module docstring): every non-context one, or all of them
    when every factor is context."""
    groups = factor_groups(columns)
    asked = [g for g in groups if not is_context(g[0], compare)]
    return asked or groups


def seed_values(sweep: Sweep, metric: str, columns: list[str]) -> pd.DataFrame:
    """Finished runs with the metric: their axis values, ``seed``, ``value`` and ``config`` label."""
    finished = sweep.finished()
    frame = sweep.params.loc[finished, [*dict.fromkeys([*columns, SEED])]].copy()
    frame["value"] = sweep.metrics.loc[finished, metric]
    frame = frame[frame["value"].notna()]
    frame["config"] = [config_label(columns, row) for row in frame[columns].itertuples(index=False)]
    return frame


def _per_seed(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {config: group.groupby(SEED)["value"].mean() for config, group in frame.groupby("config")}


def _raw(
    sweep: Sweep,
    per_seed: dict[str, pd.Series],
    config: str,
    reference: str,
    runs: pd.Index,
    margin: float | None,
) -> dict:
    """The test of ``config`` against ``reference`` on their common seeds."""
    mine, theirs = per_seed[config], per_seed[reference]
    seeds = sorted(set(mine.index) & set(theirs.index), key=value_key)
    differences = [float(mine[s] - theirs[s]) for s in seeds]
    replicated = replication(sweep.metrics.loc[runs])
    tested = test_differences(differences, replicated.ratio, margin)
    return {
        "config": config,
        "reference": reference,
        "seeds": json.dumps([_number(s) for s in seeds]),
        "differences": json.dumps(differences),
        "config_mean": float(np.mean([mine[s] for s in seeds])) if seeds else math.nan,
        "reference_mean": float(np.mean([theirs[s] for s in seeds])) if seeds else math.nan,
        "method": replicated.method,
        "ratio": replicated.ratio,
        **tested,
    }


def factor_comparisons(frame: pd.DataFrame, columns: list[str], baseline: dict[str, str], groups):
    """``(config, reference, factor, level, base level, context)`` per factor comparison."""
    found = []
    configs = {key: members for key, members in configurations(frame, frame.index, columns)}
    for group in groups:
        lead = group[0]
        base_lead = baseline.get(lead, levels(frame, lead)[0])
        others = [c for c in columns if c not in group]
        references: dict[tuple, tuple] = {}
        for key in configs:  # the first (in display order) baseline configuration per context
            values = dict(zip(columns, key, strict=True))
            if str(values[lead]) == str(base_lead) and all(
                str(values[c]) == str(baseline[c]) for c in group if c in baseline
            ):
                references.setdefault(tuple(values[c] for c in others), key)
        for key in configs:
            values = dict(zip(columns, key, strict=True))
            if str(values[lead]) == str(base_lead) or values[lead] == MISSING:
                continue
            context = tuple(values[c] for c in others)
            if context not in references:
                continue
            reference = dict(zip(columns, references[context], strict=True))
            found.append(
                {
                    "config": config_label(columns, key),
                    "reference": config_label(columns, references[context]),
                    "factor": display_name(lead),
                    "level": _level_label(group, values),
                    "baseline": _level_label(group, reference),
                    "context": config_label(others, context),
                }
            )
    return found


def _level_label(group: list[str], values: dict) -> str:
    """``elastic`` or ``elastic, l1_ratio=0.5``: the lead's value and its group's params."""
    rest = [f"{display_name(c).split('.', 1)[-1]}={values[c]}" for c in group[1:] if values[c] != MISSING]
    return ", ".join([str(values[group[0]]), *rest])


def baseline_comparisons(frame: pd.DataFrame, columns: list[str], baseline: dict[str, str]):
    """``(config, reference)`` per configuration with a baseline configuration (module docstring)."""
    if not baseline:
        return []
    base = frame[is_baseline(frame, baseline)]
    match = matched_columns(columns, baseline, base)
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
    found = []
    others = frame.index[~is_baseline(frame, baseline)]
    for key, members in configurations(frame, others, columns):
        match_key = tuple(frame.loc[members[0], match])
        if match_key in references:
            found.append({"config": config_label(columns, key), "reference": references[match_key]})
    return found


def compare(
    sweep: Sweep,
    metric: str,
    columns: list[str],
    baseline: dict[str, str],
    compare_keys: list[str] | tuple = (),
    margin: float | None = None,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every comparison of the report, tested and decided once (module docstring); ``frame``
    (default :func:`seed_values`) are the per-run values compared. Columns: the
    :func:`_raw` test, ``factor / level / baseline / context`` for factor comparisons,
    ``factor_row`` / ``paired_row`` (which table shows it), ``in_family`` and the
    :func:`~reglab.report.decisions.decide` columns."""
    frame = seed_values(sweep, metric, columns) if frame is None else frame
    if SEED not in sweep.params or frame.empty or not columns:
        return decide(pd.DataFrame(columns=["in_family"]), metric, margin)
    groups = compared_factors(columns, compare_keys)
    asked = {g[0] for g in groups}
    rows: dict[tuple, dict] = {}
    for found in factor_comparisons(frame, columns, baseline, factor_groups(columns)):
        key = (found["config"], found["reference"])
        lead = next(c for c in columns if display_name(c) == found["factor"])
        rows[key] = {**found, "factor_row": True, "paired_row": False, "in_family": lead in asked}
    for found in baseline_comparisons(frame, columns, baseline):
        key = (found["config"], found["reference"])
        if key in rows:
            rows[key]["paired_row"] = True
            continue
        factors = [display_name(c) for c in baseline]
        rows[key] = {
            **found,
            "factor": " & ".join(factors),
            "level": found["config"],
            "baseline": found["reference"],
            "context": "",
            "factor_row": False,
            "paired_row": True,
            "in_family": any(c in asked for c in baseline),
        }
    if not rows:
        return decide(pd.DataFrame(columns=["in_family"]), metric, margin)
    per_seed = _per_seed(frame)
    runs_of = frame.groupby("config").groups
    tested = []
    for (config, reference), row in rows.items():
        runs = pd.Index(runs_of[config]).append(pd.Index(runs_of[reference]))
        tested.append({**row, **_raw(sweep, per_seed, config, reference, runs, margin)})
    table = pd.DataFrame(tested)
    table["in_family"] = table["in_family"] & (table["n"] >= 2)
    return decide(table, metric, margin)


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value
