"""What varies in a sweep: the report's axes, their levels, the baseline and heatmap axes.

**Axes**: the params with more than one value across the finished runs, without ``seed``
and bookkeeping (``data.seed``, which follows ``seed``, ``paths.*``, ``logger.*``,
``resume.*``), in :func:`_priority` order, each kept only if it is not a function of the
ones kept before it (``model.dropout`` follows ``dropout``, ``regularizer._target_`` and
a fixed ``regularizer.strength`` follow ``choice.regularizer``). Dropping such a param
never changes which runs are grouped together: a configuration is one combination of
axis values, whatever the sweep varied (regularizer, dropout, ``optimizer.lr``, ...).

**Baseline** (reference of the paired differences): ``KEY=VALUE`` pairs naming axis
levels; by default ``choice.regularizer=none`` when ``choice.regularizer`` is an axis
with that level, otherwise the first level (in :func:`value_key` order) of the first axis
(and of the params of its group it leaves open). A configuration is paired with the
baseline configuration that has its values of the other axes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from reglab.errors import ReportError
from reglab.report.store import MISSING

SEED = "seed"
REGULARIZER = "choice.regularizer"
NO_REGULARIZER = "none"
IGNORED_PARAMS = frozenset({SEED, "data.seed"})
IGNORED_PREFIXES = ("paths.", "logger.", "resume.", "study.")


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
    return sorted(
        (c for c in params.columns if _is_config_param(c) and params[c].nunique() > 1), key=_priority
    )


def _determined(params: pd.DataFrame, by: list[str], column: str) -> bool:
    """Whether ``column`` takes one value within every group of equal ``by`` values."""
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
        return (0 if text == NO_REGULARIZER else 2, 0.0, text)
    return (1, number, text)


def levels(params: pd.DataFrame, column: str) -> list[str]:
    """The values of ``column`` in display order."""
    return sorted(params[column].unique(), key=value_key)


def config_label(columns: Sequence[str], values: Iterable) -> str:
    pairs = [f"{display_name(c)}={v}" for c, v in zip(columns, values, strict=True)]
    return ", ".join(pairs) or "all runs"


def configurations(params: pd.DataFrame, run_ids, columns: list[str]) -> list[tuple[tuple, pd.Index]]:
    """``(values of columns, run ids)`` per configuration among ``run_ids``, in display order."""
    run_ids = pd.Index(run_ids)
    if not columns:
        return [((), run_ids)] if len(run_ids) else []
    groups = params.loc[run_ids, columns].groupby(columns, sort=False).groups
    pairs = [
        (key if isinstance(key, tuple) else (key,), pd.Index(members)) for key, members in groups.items()
    ]
    return sorted(pairs, key=lambda pair: [value_key(v) for v in pair[0]])


# --------------------------------------------------------------------------- naming an axis


def resolve_axis(name: str, params: pd.DataFrame, axes: list[str], option: str) -> str:
    """The axis the user means by ``name``: a param name or its display name
    (``regularizer`` for ``choice.regularizer``), or a varying param that groups the runs
    exactly as one axis does (``model.dropout`` -> ``dropout``). Raises a one-line
    :class:`ReportError` naming the allowed params otherwise."""
    for candidate in (name, f"choice.{name}"):
        if candidate in axes:
            return candidate
        if candidate in params and candidate in varying_params(params):
            for axis in axes:
                if _determined(params, [axis], candidate) and _determined(params, [candidate], axis):
                    return axis
    allowed = ", ".join(display_name(a) for a in axes) or "none: every finished run has the same params"
    raise ReportError(
        f"{option} {name}: not a param that varies across the finished runs (varying: {allowed})"
    )


def parse_pairs(pairs: str | Sequence[str] | None, option: str = "--baseline") -> list[tuple[str, str]]:
    """``KEY=VALUE`` strings as ``(key, value)`` pairs."""
    if pairs is None:
        return []
    parsed = []
    for pair in [pairs] if isinstance(pairs, str) else pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ReportError(f"{option} {pair!r}: expected KEY=VALUE, e.g. {option} dropout=0")
        parsed.append((key.strip(), value.strip()))
    return parsed


def choose_baseline(params: pd.DataFrame, axes: list[str], requested=None) -> dict[str, str]:
    """The baseline as ``{axis: level}`` among the finished runs' ``params``.

    ``requested``: ``KEY=VALUE`` strings (see :func:`resolve_axis` for KEY; VALUE a level
    of KEY). Default: ``choice.regularizer=none`` when that is a level of an axis, else
    the first level of the first axis (see :func:`_default_baseline`); ``{}`` when nothing
    varies.
    """
    pairs = parse_pairs(requested)
    if not pairs:
        return _default_baseline(params, axes)
    baseline: dict[str, str] = {}
    for key, value in pairs:
        axis = resolve_axis(key, params, axes, "--baseline")
        named = key if key in params else f"choice.{key}"
        rows = pd.Series([same_level(level, value) for level in params[named]], index=params.index)
        if not rows.any():
            shown = ", ".join(map(str, levels(params, named)))
            raise ReportError(
                f"--baseline {key}={value}: no finished run has {key}={value} (values: {shown})"
            )
        baseline[axis] = str(params.loc[rows, axis].iloc[0])
    return baseline


def _default_baseline(params: pd.DataFrame, axes: list[str]) -> dict[str, str]:
    """``choice.regularizer=none`` if it is a level, else the first level of the first axis;
    then the first level of each axis the baseline leaves open (not matched, see
    :func:`matched_columns`, yet varying among its runs: ``regularizer.strength`` of
    ``regularizer=l1``), so that the default names one configuration."""
    if not axes:
        return {}
    if REGULARIZER in axes and NO_REGULARIZER in set(params[REGULARIZER]):
        baseline = {REGULARIZER: NO_REGULARIZER}
    else:
        baseline = {axes[0]: levels(params, axes[0])[0]}
    for axis in axes:
        base = params[is_baseline(params, baseline)]
        if axis not in baseline and axis not in matched_columns(axes, baseline, base):
            if base[axis].nunique() > 1:
                baseline[axis] = levels(base, axis)[0]
    return baseline


def matched_columns(axes: list[str], baseline: dict[str, str], base_params: pd.DataFrame) -> list[str]:
    """The axes a configuration and its baseline share: every axis but the baseline's own,
    the params of the baseline's group (``regularizer.*`` for ``choice.regularizer``) and
    params the baseline runs do not have (:data:`~reglab.report.store.MISSING`)."""
    groups = tuple(f"{display_name(key)}." for key in baseline)
    return [
        a
        for a in axes
        if a not in baseline and not a.startswith(groups) and not (base_params[a] == MISSING).all()
    ]


def same_level(level, value: str) -> bool:
    """``level == value`` as text, or as numbers (``0`` and ``0.0``)."""
    if str(level) == value:
        return True
    try:
        return float(level) == float(value)
    except ValueError:
        return False


def is_baseline(params: pd.DataFrame, baseline: dict[str, str]) -> pd.Series:
    """Per run (row of ``params``): whether it belongs to the baseline."""
    selected = pd.Series(bool(baseline), index=params.index)
    for key, value in baseline.items():
        selected &= params[key].astype(str) == value
    return selected
