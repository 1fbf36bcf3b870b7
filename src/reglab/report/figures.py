"""The report's figures, one registry entry each: ``<name>.png`` in the report folder.

A figure is a function of a :class:`FigureContext` that returns a matplotlib
:class:`~matplotlib.figure.Figure`, or None where it does not apply to the sweep, and one
registration line::

    @figure("lr_curve")
    def plot_lr_curve(context: FigureContext):
        ...

:func:`reglab.report.write_report` draws every registered figure, in registration order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reglab.report.axes import config_label, configurations, display_name, levels
from reglab.report.decisions import is_clear
from reglab.report.directions import lower_is_better
from reglab.report.store import Sweep, metric_histories

VAL_CURVE = "val/loss"
DPI = 120
PANELS_PER_ROW = 4


@dataclass
class FigureContext:
    """What a figure may draw from: the sweep, the compared ``metric``, the axes
    (``columns``, see :mod:`reglab.report.axes`), the summary and paired-difference tables,
    the baseline, and the heatmap's ``rows`` / ``cols`` axes (``cols`` None with one axis)."""

    sweep: Sweep
    metric: str
    columns: list[str]
    summary: pd.DataFrame
    differences: pd.DataFrame
    baseline: dict[str, str]
    rows: str | None
    cols: str | None
    effects: pd.DataFrame | None = None  # every factor against its baseline (reglab.report.comparisons)


Draw = Callable[[FigureContext], "object | None"]
FIGURES: dict[str, Draw] = {}


def figure(name: str) -> Callable[[Draw], Draw]:
    """Register ``draw`` as the figure ``<name>.png`` of every report."""

    def register(draw: Draw) -> Draw:
        FIGURES[name] = draw
        return draw

    return register


def new_figure(width: float, height: float):
    """A matplotlib figure without pyplot (no global backend state; Agg canvas)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# --------------------------------------------------------------------------- heatmap


def heatmap_panels(
    sweep: Sweep, metric: str, rows: str, cols: str | None, rest: list[str]
) -> list[tuple[str, pd.DataFrame]]:
    """``(title, grid)`` per combination of the ``rest`` axes: ``grid[r, c]`` is the mean of
    ``metric`` over the seeds of the one configuration ``rows=r, cols=c, rest=panel``
    (NaN where the sweep lacks it). With ``rows``, ``cols`` and ``rest`` all the axes no
    cell averages over a factor that varies."""
    finished = sweep.finished()
    frame = sweep.params.loc[finished].copy()
    frame["value"] = sweep.metrics.loc[finished, metric]
    row_levels = levels(frame, rows)
    col_levels = levels(frame, cols) if cols else [metric]
    panels = []
    for key, members in configurations(frame, frame.index, rest):
        part = frame.loc[members]
        if cols:
            grid = part.groupby([rows, cols])["value"].mean().unstack()
        else:
            grid = part.groupby(rows)["value"].mean().to_frame(metric)
        panels.append(
            (config_label(rest, key) if rest else "", grid.reindex(index=row_levels, columns=col_levels))
        )
    return panels


@figure("heatmap")
def plot_heatmap(context: FigureContext):
    """Mean metric over seeds, ``rows`` x ``cols``; one panel per combination of the other axes."""
    if context.rows is None:
        return None
    rest = [c for c in context.columns if c not in (context.rows, context.cols)]
    panels = heatmap_panels(context.sweep, context.metric, context.rows, context.cols, rest)
    n_rows, n_cols = panels[0][1].shape
    across = min(len(panels), PANELS_PER_ROW)
    down = math.ceil(len(panels) / across)
    fig = new_figure(1.4 + (0.6 + 1.3 * n_cols) * across + 1.0, 1.0 + (0.8 + 0.55 * n_rows) * down)
    axes = fig.subplots(down, across, squeeze=False).ravel()
    values = np.concatenate([grid.to_numpy(dtype=float).ravel() for _, grid in panels])
    low, high = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (0.0, 1.0)
    cmap = "viridis_r" if lower_is_better(context.metric) else "viridis"
    image = None
    for index, (ax, (title, grid)) in enumerate(zip(axes, panels, strict=False)):
        image = ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, vmin=low, vmax=high, aspect="auto")
        ax.set_xticks(range(n_cols), labels=[str(c) for c in grid.columns])
        ax.set_yticks(range(n_rows), labels=[str(r) for r in grid.index])
        ax.set_xlabel(display_name(context.cols) if context.cols else "")
        if index % across == 0:
            ax.set_ylabel(display_name(context.rows))
        ax.set_title(title, fontsize=9)
        _annotate(ax, grid.to_numpy(dtype=float), (low + high) / 2, lower_is_better(context.metric))
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes[: len(panels)]), label=f"mean {context.metric}")
    title = f"mean {context.metric} over seeds"
    if rest:
        title += f"; one panel per {' x '.join(display_name(c) for c in rest)}"
    fig.suptitle(title, fontsize=10)
    return fig


def _annotate(ax, data: np.ndarray, middle: float, lower_better: bool) -> None:
    for (i, j), value in np.ndenumerate(data):
        if not math.isnan(value):
            dark = (value < middle) != lower_better
            ax.text(
                j, i, f"{value:.3g}", ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )


# --------------------------------------------------------------------------- bars


@figure("bars")
def plot_bars(context: FigureContext):
    """Mean metric per configuration, error bars one sample std over seeds."""
    summary, metric = context.summary, context.metric
    if summary.empty:
        return None
    means = summary[f"{metric}_mean"].to_numpy(dtype=float)
    stds = np.nan_to_num(summary[f"{metric}_std"].to_numpy(dtype=float))
    labels = [f"{c} (n={n})" for c, n in zip(summary["config"], summary["n"], strict=True)]
    fig = new_figure(8, 1.2 + 0.35 * len(labels))
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
    return fig


# --------------------------------------------------------------------------- validation curves


@figure("val_curves")
def plot_val_curves(context: FigureContext):
    """``val/loss`` per epoch: a thin line per seed, and per configuration a thick line, the
    mean over its seeds at the epochs every one of them reached (early stopping ends seeds
    at different epochs; the legend says where the mean stops when they do)."""
    from matplotlib.ticker import MaxNLocator

    sweep = context.sweep
    histories = metric_histories(sweep, sweep.finished(), VAL_CURVE)
    groups = [
        (key, [histories[m] for m in members if m in histories])
        for key, members in configurations(sweep.params, sweep.finished(), context.columns)
    ]
    groups = [(key, curves) for key, curves in groups if curves]
    if not groups:
        return None
    fig = new_figure(8, 4.5)
    ax = fig.subplots()
    colors = _colors(len(groups))
    for (key, curves), color in zip(groups, colors, strict=True):
        for curve in curves:
            ax.plot(curve.index, curve.to_numpy(), lw=0.7, alpha=0.35, color=color)
        common = pd.concat(curves, axis=1).dropna()
        label = f"{config_label(context.columns, key)} (n={len(curves)})"
        if len({curve.index.max() for curve in curves}) > 1:
            label += f", mean to epoch {common.index.max()}"
        ax.plot(
            common.index,
            common.mean(axis=1).to_numpy(),
            lw=1.8,
            color=color,
            label=label,
            marker="." if len(common) < 30 else None,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(VAL_CURVE)
    ax.set_title("thin: one seed; thick: mean over the seeds, at the epochs all of them reached", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    return [cmap(i) if n <= 20 else cmap(i / max(n - 1, 1)) for i in range(n)]


VERDICT_COLORS = {1: "tab:green", -1: "tab:red", 0: "dimgray"}


@figure("forest")
def plot_forest(context: FigureContext):
    """Each compared factor's levels against its baseline (one row per level and combination of
    the other factors): the mean paired difference and its Holm-consistent interval (the one
    that excludes 0 exactly when the comparison's verdict is better or worse, which sets the
    colour), zero marked. Drawn when some comparison has an interval (two seeds or more)."""
    effects = context.effects
    if effects is None or effects.empty:
        return None
    effects = effects[effects["in_family"].astype(bool) & effects["ci_low"].notna()]
    if effects.empty:
        return None
    labels = [
        f"{r.factor}={r.level} vs {r.baseline}" + (f" | {r.context}" if r.context else "")
        for r in effects.itertuples()
    ]
    fig = new_figure(8, 1.0 + 0.32 * len(effects))
    axis = fig.subplots()
    positions = np.arange(len(effects))[::-1]
    for position, row in zip(positions, effects.itertuples(), strict=True):
        color = VERDICT_COLORS[is_clear(row.verdict)]
        error = [[row.mean_difference - row.ci_low], [row.ci_high - row.mean_difference]]
        axis.errorbar(row.mean_difference, position, xerr=error, fmt="o", color=color, capsize=3)
    axis.axvline(0.0, color="grey", linewidth=1, linestyle="--")
    axis.set_yticks(positions, labels, fontsize=7)
    axis.set_xlabel(
        f"difference in {context.metric} (Holm-consistent interval; green better, red worse, grey neither)"
    )
    return fig
