"""The report's text: markdown tables of the summary and the paired differences, and the
whole ``summary.md`` (what was counted, the tables, the failed runs, the figures)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pandas as pd

from reglab.report.axes import REGULARIZER, SEED, config_label, display_name, is_baseline
from reglab.report.stats import EPOCHS, ZERO_FRACTION, lower_is_better, sparsity
from reglab.report.store import MISSING, Sweep

REASON_CHARS = 200  # of a failure reason in summary.md (the full one is the run's tag)


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
    """One row per configuration: axis values, ``n``, ``mean ± sd`` per quantity; the best
    mean of ``metric`` in bold."""
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
    """One row per paired configuration: baseline, ``n``, mean difference, interval, the
    per-seed differences and the verdict."""
    rows = []
    for _, row in differences.iterrows():
        interval = (
            MISSING if math.isnan(row["ci95_low"]) else f"[{row['ci95_low']:+.3g}, {row['ci95_high']:+.3g}]"
        )
        diffs = ", ".join(f"{d:+.3g}" for d in json.loads(row["differences"]))
        mean = MISSING if math.isnan(row["mean_difference"]) else f"{row['mean_difference']:+.3g}"
        rows.append([row["config"], row["baseline"], row["n"], mean, interval, diffs, row["verdict"]])
    return markdown_table(
        ["config", "baseline", "n", f"mean Δ {metric}", "95% CI", "per-seed Δ", "verdict"], rows
    )


def baseline_name(baseline: dict[str, str]) -> str:
    """``the `none` regularizer`` for the regularizer alone, else ``dropout=0``-style pairs."""
    if list(baseline) == [REGULARIZER]:
        return f"the `{baseline[REGULARIZER]}` regularizer"
    return ", ".join(f"`{display_name(k)}={v}`" for k, v in baseline.items())


def sparsity_note(sweep: Sweep) -> str:
    """Which runs' zero fraction is that of the tested weights and which the last epoch's."""
    _, source = sparsity(sweep.metrics.loc[sweep.finished()])
    best, last = int((source == "best").sum()), int((source == "last").sum())
    if best + last == 0:
        return ""
    note = (
        f"`{ZERO_FRACTION}`: share of weights exactly 0 in the tested model (the best epoch's "
        f"weights, `best/{ZERO_FRACTION}`) for {best} of {best + last} runs"
    )
    if last:
        note += (
            f"; the other {last} runs (logged before `best/{ZERO_FRACTION}` existed) give the "
            f"last epoch's `{ZERO_FRACTION}` (column `{ZERO_FRACTION}_source` of summary.csv)"
        )
    return note + "."


BUDGET_RATIO = 2.0  # compared configurations trained this many times longer than others: a warning


def budget_note(summary: pd.DataFrame) -> str:
    """A warning when the configurations' mean epochs trained differ by more than
    ``BUDGET_RATIO``: part of a measured difference may be training budget, not
    regularization (README, "Fair budgets": ``callbacks=fixed_budget``)."""
    column = f"{EPOCHS}_mean"
    if column not in summary or summary[column].dropna().empty or summary[column].min() <= 0:
        return ""
    longest, shortest = summary.loc[summary[column].idxmax()], summary.loc[summary[column].idxmin()]
    ratio = longest[column] / shortest[column]
    if ratio <= BUDGET_RATIO:
        return ""
    return (
        f"**Unequal budgets**: `{longest['config']}` trained {longest[column]:.0f} epochs on average, "
        f"`{shortest['config']}` {shortest[column]:.0f} ({ratio:.1f}x, more than {BUDGET_RATIO:g}x): "
        "early stopping gave the configurations different training budgets; compare them under "
        "`callbacks=fixed_budget` (the same epochs for all, tested at the best validation epoch)."
    )


def proximal_note(sweep: Sweep) -> str:
    """Runs in proximal mode whose tested weights have no exact zero: the proximal step made
    no weight zero, so they do not show what it is for (README, "Penalty or proximal step":
    the conditions under which zeros appear)."""
    finished = sweep.finished()
    mode = sweep.params.reindex(finished).get("regularizer.mode")
    if mode is None:
        return ""
    zero, _ = sparsity(sweep.metrics.loc[finished])
    flagged = [run for run in finished if mode.get(run) == "proximal" and zero.get(run) == 0]
    if not flagged:
        return ""
    return (
        f"**Proximal without zeros**: {len(flagged)} of the proximal runs ended with no weight exactly "
        "0 (their strength times learning rate is below the weights' size, or the optimizer's momentum "
        "or adaptive step undid the soft-thresholding): runs "
        + ", ".join(f"`{r}`" for r in flagged[:10])
        + (" ..." if len(flagged) > 10 else "")
        + "."
    )


def document(
    sweep: Sweep,
    metric: str,
    columns: list[str],
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    baseline: dict[str, str],
    figures: list[str],
    effects: pd.DataFrame | None = None,
) -> str:
    """The text of ``summary.md``."""
    lines = _head(sweep, metric, columns, baseline)
    lines += answer_section(effects, metric)
    lines += ["## Configurations", "", summary_markdown(summary, metric, columns)]
    for note in (sparsity_note(sweep), budget_note(summary), proximal_note(sweep)):
        lines += [note, ""] if note else []
    lines += _differences_section(metric, columns, summary, differences, baseline)
    lines += effects_section(effects, metric)
    lines += _failed_section(sweep, columns)
    lines += ["## Figures", ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _head(sweep: Sweep, metric: str, columns: list[str], baseline: dict[str, str]) -> list[str]:
    finished, failed, unfinished = sweep.finished(), sweep.failed(), sweep.unfinished()
    direction = "lower" if lower_is_better(metric) else "higher"
    launched = f", {sweep.launches} launches (resumed)" if sweep.launches > 1 else ""
    chosen = ", ".join(f"`{display_name(k)}={v}`" for k, v in baseline.items()) or "none"
    return [
        f"# Ablation report: sweep {sweep.sweep_id}",
        "",
        f"- experiment `{sweep.experiment}`, parent run `{sweep.parent_run_id}`{launched}, "
        f"store `{sweep.uri}`",
        f"- runs: {len(sweep.runs)} ({len(finished)} finished and counted, {len(failed)} failed/killed, "
        f"{len(unfinished)} not finished)"
        + (
            f"; {sweep.never_ran()} of the {sweep.planned} planned jobs never ran (interrupted: resume "
            "with +resume=true)"
            if sweep.never_ran()
            else ""
        ),
        f"- metric: `{metric}` ({direction} is better); mean ± sample std (ddof=1) over seeds; "
        f"`{ZERO_FRACTION}` of the tested weights (below the table); `{EPOCHS}` = epochs trained",
        f"- configuration: {', '.join(f'`{c}`' for c in columns) or 'one configuration'} "
        "(the params that vary across the finished runs, seed aside)",
        f"- baseline of the paired differences: {chosen}",
        f"- generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]


def _differences_section(
    metric: str,
    columns: list[str],
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    baseline: dict[str, str],
) -> list[str]:
    if not baseline:
        return ["## Paired differences", "", "One configuration: no paired differences.", ""]
    name = baseline_name(baseline)
    lines = [f"## Paired differences against {name}", ""]
    if differences.empty:
        return lines + [
            f"No configuration has a {name} baseline with the same other params "
            "in this sweep: no paired differences.",
            "",
        ]
    direction = "lower" if lower_is_better(metric) else "higher"
    lines += [
        f"Δ = {metric}(configuration) − {metric}(baseline) on the same seed; {direction} {metric} is "
        f"better, so a {'negative' if direction == 'lower' else 'positive'} Δ favours the configuration. "
        f"95% CI: mean Δ ± t(0.975, n−1)·sd(Δ)/√n over the n paired seeds.",
        "",
        differences_markdown(differences, metric),
    ]
    if (differences["n"] < 2).any():
        lines += [
            "With n = 1 paired seed there is no interval (NaN): run more seeds "
            "(`seed=1,2,3`) before calling a difference.",
            "",
        ]
    axes = summary[[display_name(c) for c in columns]].set_axis(columns, axis=1)
    unpaired = summary.config[~is_baseline(axes, baseline) & ~summary.config.isin(differences.config)]
    if len(unpaired):
        lines += [f"No baseline with the same other params for: {'; '.join(unpaired)}.", ""]
    return lines


def _failed_section(sweep: Sweep, columns: list[str]) -> list[str]:
    failed, unfinished = sweep.failed(), sweep.unfinished()
    lines = ["## Failed and killed runs", ""]
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
        lines += [
            "Excluded from every number above.",
            "",
            markdown_table(["config", "seed", "status", "reason", "run"], rows),
        ]
    if not unfinished.empty:
        lines += [
            f"{len(unfinished)} runs not finished yet (status "
            f"{', '.join(sorted(set(unfinished.status)))}): excluded.",
            "",
        ]
    return lines


def effects_section(effects: pd.DataFrame | None, metric: str) -> list[str]:
    """Every factor against its baseline level (:mod:`reglab.report.effects`)."""
    if effects is None or effects.empty:
        return []
    header = [
        "factor",
        "level vs baseline",
        "others fixed at",
        "n",
        f"mean diff of {metric}",
        "95% CI",
        "p (Holm)",
        "d_z",
        "seeds for 80% power",
    ]
    rows = [
        [
            r.factor,
            f"{r.level} vs {r.baseline}",
            r.context,
            r.n,
            _format(r.mean_difference),
            f"[{_format(r.ci_low)}, {_format(r.ci_high)}]",
            _format(r.p_holm, digits=3),
            _format(r.effect_dz, digits=2),
            "-" if not math.isfinite(r.seeds_for_80_power) else int(r.seeds_for_80_power),
        ]
        for r in effects.itertuples()
    ]
    return [
        "## Every factor against its baseline",
        "",
        "Each level of each varying factor against the factor's baseline level, all other factors "
        "fixed, paired over seeds: mean difference, 95 % t interval, two-sided paired t-test with "
        "p-values Holm-adjusted over all rows, the paired effect size d_z = mean / sd, and the seeds "
        "an 80 % powered test of that effect would need (`factor_effects.csv`, `forest.png`).",
        "",
        markdown_table(header, rows),
        "",
    ]


SIGNIFICANCE = 0.05


def answer_section(effects: pd.DataFrame | None, metric: str) -> list[str]:
    """The answer in words, first: per factor level against its baseline, in how many of the
    contexts (values of the other factors) it is better, worse, or not clearly different
    (Holm-adjusted p < 0.05), with the interval of the largest difference."""
    if effects is None or effects.empty:
        return []
    better_sign = -1.0 if lower_is_better(metric) else 1.0
    lines = ["## Answer", ""]
    for (factor, level, base), group in effects.groupby(["factor", "level", "baseline"], sort=False):
        clear = group["p_holm"] < SIGNIFICANCE
        better = int((clear & (better_sign * group["mean_difference"] > 0)).sum())
        worse = int((clear & (better_sign * group["mean_difference"] < 0)).sum())
        largest = group.loc[group["mean_difference"].abs().idxmax()]
        where = f" ({largest['context']})" if largest["context"] != "all runs" else ""
        interval = f"[{_format(largest['ci_low'])}, {_format(largest['ci_high'])}]"
        unclear = len(group) - better - worse
        lines.append(
            f"- {factor}={level} vs {base}: better {metric} in {better}, worse in {worse}, no clear "
            f"difference in {unclear} of {len(group)} contexts; largest difference "
            f"{_format(largest['mean_difference'])} {interval}{where}"
        )
    return [
        *lines,
        "",
        "(paired over seeds, 95 % t intervals, Holm-adjusted over all comparisons; details below)",
        "",
    ]
