"""The bias-variance study's files: ``bias_variance.csv`` (every row of
:func:`reglab.studies.bias_variance_study.run_dataset`), ``bias_variance.md`` (a table per data
set and loss, values with their Monte Carlo standard errors) and ``bias_variance_<data set>.png``
(one panel per loss and regularizer: error, bias^2 and variance against the strength, the
variance's data and seed parts, the error-minimizing strength marked)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

LOSS_TITLES = {
    "squared": "squared loss: error = bias^2 + variance + noise",
    "zero_one": "0-1 loss (Domingos): error = bias + net variance",
    "cross_entropy": "cross-entropy (Heskes): error = bias + variance",
}
COLUMNS = {  # component -> table header, per loss
    "squared": {
        "error": "error",
        "bias": "bias^2",
        "variance": "variance",
        "variance_data": "data part",
        "variance_init": "seed part",
        "noise": "noise",
        "measured": "test MSE",
    },
    "zero_one": {
        "error": "error",
        "bias": "bias",
        "variance": "net variance",
        "variance_unbiased": "unbiased var.",
        "variance_biased": "biased var.",
        "measured": "1 - test acc",
    },
    "cross_entropy": {
        "error": "error",
        "bias": "bias",
        "variance": "variance",
        "variance_data": "data part",
        "variance_init": "seed part",
        "measured": "test loss",
    },
}


def best_strengths(rows: pd.DataFrame) -> pd.DataFrame:
    """The row of the lowest ``error`` per data set, loss and regularizer."""
    valid = rows.dropna(subset=["error"])
    return valid.loc[valid.groupby(["dataset", "loss", "regularizer"], sort=False)["error"].idxmin()]


def _cell(row: pd.Series, key: str) -> str:
    value, se = row[key], row.get(f"{key}_se", np.nan)
    if pd.isna(value):
        return "-"
    return f"{value:.4g}" if pd.isna(se) else f"{value:.4g} ± {se:.2g}"


def table(rows: pd.DataFrame, loss: str) -> list[str]:
    """A markdown table of one data set's rows of ``loss``: value ± standard error, the
    error-minimizing strength of each regularizer in bold."""
    columns = COLUMNS[loss]
    best = set(best_strengths(rows).index)
    lines = [
        "| regularizer | strength | " + " | ".join(columns.values()) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for index, row in rows.iterrows():
        strength = f"**{row.strength:g}**" if index in best else f"{row.strength:g}"
        cells = [_cell(row, key) for key in columns]
        lines.append(f"| {row.regularizer} | {strength} | " + " | ".join(cells) + " |")
    return lines


def summary(rows: pd.DataFrame, loss: str) -> list[str]:
    """One line per regularizer: where its error is lowest, and how bias and variance move from
    its smallest to its largest strength."""
    name = "bias^2" if loss == "squared" else "bias"
    lines = []
    for regularizer, part in rows.groupby("regularizer", sort=False):
        part = part.dropna(subset=["error"]).sort_values("strength")
        if part.empty:
            lines.append(f"- {regularizer}: no strength with every fit FINISHED")
            continue
        low, high, best = part.iloc[0], part.iloc[-1], part.loc[part["error"].idxmin()]
        lines.append(
            f"- {regularizer}: error lowest at strength {best.strength:g} ({_cell(best, 'error')}); "
            f"from strength {low.strength:g} to {high.strength:g} {name} {_cell(low, 'bias')} -> "
            f"{_cell(high, 'bias')}, variance {_cell(low, 'variance')} -> {_cell(high, 'variance')}"
        )
    return lines


def page(rows: pd.DataFrame, heading: Sequence[str], figures: dict[str, str]) -> str:
    """``bias_variance.md``: the ``heading`` lines, then per data set its figure, and per loss a
    summary and a table."""
    lines = ["# Bias and variance against regularization strength", "", *heading]
    for dataset, part in rows.groupby("dataset", sort=False):
        first = part.iloc[0]
        lines += [
            "",
            f"## {dataset}",
            "",
            f"{first.replicates} training sets ({first.training_sets}) x {first.seeds} seeds = "
            f"{first.fits} fits per regularizer and strength; noise {first.noise_source}; "
            f"{int(part.drop_duplicates(['regularizer', 'strength']).failed.sum())} failed fits; "
            f"{part.drop_duplicates('regularizer').seconds.sum():.0f} s of stacked training and testing.",
        ]
        if dataset in figures:
            lines += ["", f"![bias and variance on {dataset}]({figures[dataset]})"]
        for loss, rows_of_loss in part.groupby("loss", sort=False):
            if loss not in COLUMNS:
                continue
            lines += ["", f"### {LOSS_TITLES[loss]}", "", *summary(rows_of_loss, loss), ""]
            lines += table(rows_of_loss, loss)
    return "\n".join(lines) + "\n"


def figure(rows: pd.DataFrame, dataset: str):
    """One data set's figure, a panel per regularizer in each row: per loss, error, bias and
    variance against the strength; under it (squared loss, cross-entropy) the variance as its
    data part and its seed part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = rows[(rows.dataset == dataset) & rows.loss.isin(list(COLUMNS))]
    regularizers = list(dict.fromkeys(part.regularizer))
    panels = []
    for loss in dict.fromkeys(part.loss):
        panels.append((loss, _components))
        if part[part.loss == loss].variance_init.notna().any():
            panels.append((loss, _variance_split))
    fig, axes = plt.subplots(
        len(panels), len(regularizers), figsize=(4.6 * len(regularizers), 3.4 * len(panels)), squeeze=False
    )
    for i, (loss, draw) in enumerate(panels):
        for j, regularizer in enumerate(regularizers):
            ax = axes[i][j]
            panel = part[(part.loss == loss) & (part.regularizer == regularizer)].sort_values("strength")
            title = draw(ax, panel, loss)
            _mark_best(ax, panel)
            ax.set_title(f"{dataset}, {regularizer}: {title}", fontsize=9)
            ax.set_xscale("log")
            ax.set_xlabel("strength")
            ax.grid(alpha=0.3)
        axes[i][0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _components(ax, panel: pd.DataFrame, loss: str) -> str:
    """Error, bias and variance with standard-error bars, and the fits' measured test metric."""
    x = panel.strength.to_numpy()
    for key, label, style in (
        ("error", "error", {"color": "black", "lw": 2}),
        ("bias", "bias^2" if loss == "squared" else "bias", {"color": "tab:blue"}),
        ("variance", "net variance" if loss == "zero_one" else "variance", {"color": "tab:orange"}),
    ):
        ax.errorbar(x, panel[key], yerr=panel[f"{key}_se"], label=label, marker="o", ms=3, capsize=2, **style)
    if loss == "zero_one":
        ax.plot(x, panel.variance_unbiased, ls="--", color="tab:orange", lw=1, label="unbiased variance")
        ax.plot(x, panel.variance_biased, ls=":", color="tab:orange", lw=1, label="biased variance")
    if loss == "squared":
        ax.axhline(panel.noise.iloc[0], color="grey", ls=":", lw=1, label="noise")
    ax.plot(x, panel.measured, ls="none", marker="x", color="black", ms=5, label="measured (test metric)")
    return loss.replace("_", "-")


def _variance_split(ax, panel: pd.DataFrame, loss: str) -> str:
    """The variance stacked as its data part (training sets) and seed part (initialization)."""
    x, data = panel.strength.to_numpy(), panel.variance_data.to_numpy()
    ax.fill_between(x, 0, data, color="tab:orange", alpha=0.35, lw=0, label="data part")
    ax.fill_between(
        x, data, data + panel.variance_init, color="tab:green", alpha=0.45, lw=0, label="seed part"
    )
    ax.errorbar(
        x,
        panel.variance,
        yerr=panel.variance_se,
        color="tab:orange",
        marker="o",
        ms=3,
        capsize=2,
        label="variance",
    )
    return f"{loss.replace('_', '-')} variance, data / seed"


def _mark_best(ax, panel: pd.DataFrame) -> None:
    """A dashed line at the strength of the lowest error."""
    if panel.error.notna().any():
        best = panel.loc[panel.error.idxmin()]
        ax.axvline(best.strength, color="black", ls="--", lw=0.8)
        ax.annotate(
            f"lowest error: {best.strength:g}",
            xy=(best.strength, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            fontsize=7,
            va="top",
        )


def write(rows: pd.DataFrame, folder: Path, heading: Sequence[str]) -> list[Path]:
    """Write the csv, the figures and the page into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "bias_variance.csv"]
    rows.to_csv(written[0], index=False)
    figures = {}
    for dataset in dict.fromkeys(rows.dataset):
        if rows[(rows.dataset == dataset)].error.notna().any():
            name = f"bias_variance_{dataset}.png"
            fig = figure(rows, dataset)
            fig.savefig(folder / name, dpi=110)
            fig.clf()
            written.append(folder / name)
            figures[dataset] = name
    written.append(folder / "bias_variance.md")
    written[-1].write_text(page(rows, heading, figures))
    return written
