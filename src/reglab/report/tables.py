"""The report's text: markdown tables of the summary and the comparisons, and the whole
``summary.md`` (what was counted, the Answer, the tables, the failed runs, the figures). Every
verdict it prints is the ``verdict`` column of :func:`reglab.report.comparisons.compare`."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pandas as pd

from reglab.report.axes import REGULARIZER, SEED, config_label, display_name, is_baseline
from reglab.report.decisions import ALPHA, UNTESTED, is_clear
from reglab.report.directions import direction_words, lower_is_better
from reglab.report.stats import EPOCHS, FAILED, ZERO_FRACTION, sparsity
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
    """One row per configuration: axis values, ``n``, failed seeds, ``mean ± sd`` per quantity;
    the best mean of ``metric`` in bold when one configuration has it alone."""
    names = [display_name(c) for c in columns] or ["config"]
    quantities = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    means = summary[f"{metric}_mean"]
    top = means.min() if lower_is_better(metric) else means.max()
    best = means.idxmin() if lower_is_better(metric) else means.idxmax()
    unique = len(summary) > 1 and int((means == top).sum()) == 1
    rows = []
    for i, row in summary.iterrows():
        cells = [row[name] for name in names] + [row["n"], row.get(FAILED, 0)]
        for quantity in quantities:
            text = _format(row[f"{quantity}_mean"], row[f"{quantity}_std"])
            cells.append(f"**{text}**" if quantity == metric and i == best and unique else text)
        rows.append(cells)
    return markdown_table([*names, "n", "failed", *quantities], rows)


def _interval(row) -> str:
    if not math.isfinite(row.ci_low):
        return MISSING
    return f"[{row.ci_low:+.3g}, {row.ci_high:+.3g}] ({100 * row.ci_level:.3g} %)"


def _p(value: float) -> str:
    return MISSING if not math.isfinite(value) else f"{value:.3g}"


def differences_markdown(differences: pd.DataFrame, metric: str) -> str:
    """One row per baseline comparison: reference, ``n``, mean difference, its Holm-consistent
    interval, the per-seed differences, ``p_Holm`` and the verdict."""
    rows = []
    for row in differences.itertuples():
        diffs = ", ".join(f"{d:+.3g}" for d in json.loads(row.differences))
        mean = MISSING if math.isnan(row.mean_difference) else f"{row.mean_difference:+.3g}"
        rows.append(
            [row.config, row.reference, row.n, mean, _interval(row), diffs, _p(row.p_holm), row.verdict]
        )
    return markdown_table(
        [
            "config",
            "baseline",
            "n",
            f"mean Δ {metric}",
            "interval (Holm-consistent)",
            "per-seed Δ",
            "p (Holm)",
            "verdict",
        ],
        rows,
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
    regularization (docs/sweeps.md, "Fair budgets": ``callbacks=fixed_budget``)."""
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
    no weight zero, so they do not show what it is for (docs/penalties.md, "Penalty or proximal step":
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
    everything: Sweep,
    sweep: Sweep,
    metric: str,
    columns: list[str],
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    baseline: dict[str, str],
    figures: list[str],
    failures: pd.DataFrame,
    margin: float | None = None,
) -> str:
    """The text of ``summary.md``: ``everything`` is the sweep as run, ``sweep`` the runs compared
    (the selected ones of a tuned study)."""
    effects = comparisons[comparisons["factor_row"].astype(bool)] if not comparisons.empty else comparisons
    differences = (
        comparisons[comparisons["paired_row"].astype(bool)] if not comparisons.empty else comparisons
    )
    lines = _head(everything, sweep, metric, columns, baseline, comparisons)
    lines += answer_section(effects, metric, figures, margin)
    lines += ["## Configurations", "", summary_markdown(summary, metric, columns)]
    for note in (sparsity_note(sweep), budget_note(summary), proximal_note(sweep)):
        lines += [note, ""] if note else []
    lines += _differences_section(metric, columns, summary, differences, baseline)
    lines += effects_section(effects, metric, figures, margin)
    lines += _failed_section(everything, columns, failures)
    lines += ["## Figures", ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _head(
    everything: Sweep,
    sweep: Sweep,
    metric: str,
    columns: list[str],
    baseline: dict[str, str],
    comparisons: pd.DataFrame,
) -> list[str]:
    finished, failed, unfinished = everything.finished(), everything.failed(), everything.unfinished()
    launched = f", {everything.launches} launches (resumed)" if everything.launches > 1 else ""
    chosen = ", ".join(f"`{display_name(k)}={v}`" for k, v in baseline.items()) or "none"
    compared = len(sweep.finished())
    selected = (
        f"; {compared} of them selected at their tuned settings and compared"
        if compared < len(finished)
        else ""
    )
    methods = sorted(set(comparisons["method"])) if not comparisons.empty else []
    return [
        f"# Ablation report: sweep {everything.sweep_id}",
        "",
        f"- experiment `{everything.experiment}`, parent run `{everything.parent_run_id}`{launched}, "
        f"store `{everything.uri}`",
        f"- runs: {len(everything.runs)} ({len(finished)} finished and counted{selected}, {len(failed)} "
        f"failed/killed, {len(unfinished)} not finished)"
        + (
            f"; {everything.never_ran()} of the {everything.planned} planned jobs never ran (interrupted: "
            "resume with +resume=true)"
            if everything.never_ran()
            else ""
        ),
        f"- metric: `{metric}` ({direction_words(metric)}); mean ± sample std (ddof=1) over seeds; "
        f"`{ZERO_FRACTION}` of the tested weights (below the table); `{EPOCHS}` = epochs trained",
        f"- configuration: {', '.join(f'`{c}`' for c in columns) or 'one configuration'} "
        "(the params that vary across the finished runs, seed aside)",
        f"- baseline: {chosen}",
        *(
            [f"- intervals and tests: {'; '.join(methods)} ({_method_reason(comparisons)})"]
            if methods
            else []
        ),
        f"- generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]


def _method_reason(comparisons: pd.DataFrame) -> str:
    from reglab.report.decisions import CORRECTED_T

    if (comparisons["method"] == CORRECTED_T).any():
        ratio = comparisons.loc[comparisons["method"] == CORRECTED_T, "ratio"].iloc[0]
        return (
            "seeds re-split one data set, so their training and test sets overlap and a paired t over "
            f"seeds would be too narrow: se = sd·√(1/n + n_test/n_train), n_test/n_train = {ratio:.3g}"
        )
    return "each seed draws new samples, or the runs do not say: se = sd/√n over seeds"


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
        "Verdicts and intervals as in the Answer (one rule: Holm-adjusted over the family; each "
        "interval excludes 0 exactly when its verdict is better or worse).",
        "",
        differences_markdown(differences, metric),
    ]
    if (differences["n"] < 2).any():
        lines += [
            "With n = 1 paired seed there is no interval and no verdict: run more seeds "
            "(`seed=0,1,2,3,4`) before calling a difference.",
            "",
        ]
    axes = summary[[display_name(c) for c in columns]].set_axis(columns, axis=1)
    unpaired = summary.config[~is_baseline(axes, baseline) & ~summary.config.isin(differences.config)]
    if len(unpaired):
        lines += [f"No baseline with the same other params for: {'; '.join(unpaired)}.", ""]
    return lines


def _failed_section(sweep: Sweep, columns: list[str], failures: pd.DataFrame) -> list[str]:
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
            f"A configuration and seed whose runs all failed is an outcome ({len(failures)} here: the "
            "`failed` column of the table above); the comparisons count only finished runs, and the "
            "Answer says where counting each failure at the worst observed value would change a verdict.",
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


def effects_section(
    effects: pd.DataFrame, metric: str, figures: list[str], margin: float | None = None
) -> list[str]:
    """Every compared factor against its baseline level (:mod:`reglab.report.comparisons`)."""
    if effects is None or effects.empty:
        return []
    header = ["factor", "level vs baseline", "others fixed at", "n", f"mean diff of {metric}"]
    header += ["interval (Holm-consistent)", "p", "p (Holm)", "verdict"]
    header += ["seeds for 80 % power at ±margin"] if margin else []
    rows = []
    for r in effects.itertuples():
        cells = [r.factor, f"{r.level} vs {r.baseline}", r.context or "all runs", r.n]
        cells += [_format(r.mean_difference), _interval(r), _p(r.p), _p(r.p_holm), r.verdict]
        if margin:
            cells.append(MISSING if not math.isfinite(r.seeds_needed) else f"{r.seeds_needed:.0f}")
        rows.append(cells)
    forest = " and `forest.png`" if "forest.png" in figures else ""
    power = (
        f" Seeds for 80 % power: prospective, the seeds a test at the family's level α/K = "
        f"{ALPHA:g}/{int(effects['in_family'].sum())} needs to detect a true difference of ±{margin:g} with "
        "each comparison's sd and interval method (∞: out of reach by seeds alone, the test-set noise "
        "of one data set bounds the precision)."
        if margin
        else ""
    )
    return [
        "## Every factor against its baseline",
        "",
        "Each level of each varying factor against the factor's baseline level, all other factors "
        "fixed, paired over seeds. The family of tests is every comparison of a compared factor "
        "(context factors, the model, data and trainer, are where a question is asked, not questions: "
        "`--compare KEY` compares one); p-values are Holm-adjusted over it, and each interval has the "
        f"level 1 − α·p/p_Holm (α = {ALPHA:g}) at which it excludes 0 exactly when p_Holm < α "
        f"(`factor_effects.csv`{forest}).{power}",
        "",
        markdown_table(header, rows),
        "",
    ]


def answer_lines(effects: pd.DataFrame, metric: str, margin: float | None = None) -> list[str]:
    """The Answer's bullet lines: per factor level against its baseline, the verdicts over the
    contexts (values of the other factors) and the largest difference with its interval."""
    lines = []
    family = effects[effects["in_family"].astype(bool)] if not effects.empty else effects
    for (factor, level, base), group in family.groupby(["factor", "level", "baseline"], sort=False):
        clear = group["verdict"].map(is_clear)
        better, worse = int((clear > 0).sum()), int((clear < 0).sum())
        equivalent = int(group["verdict"].str.startswith("equivalent").sum())
        unclear = len(group) - better - worse - equivalent
        largest = group.loc[group["mean_difference"].abs().idxmax()]
        where = f" ({largest['context']})" if largest["context"] else ""
        counts = f"better {metric} in {better}, worse in {worse}"
        counts += f", equivalent within ±{margin:g} in {equivalent}" if margin else ""
        counts += f", inconclusive in {unclear} of {len(group)} contexts"
        lines.append(
            f"- {factor}={level} vs {base}: {counts}; largest difference "
            f"{_format(largest['mean_difference'])} {_interval(largest)}{where}: {largest['verdict']}"
        )
        changed = group[
            (group["verdict_worst_case"] != "") & (group["verdict_worst_case"] != group["verdict"])
        ]
        for row in changed.itertuples():
            lines.append(
                f"  - counting failed runs at the worst observed {metric}: {row.context or 'all runs'} "
                f"becomes {row.verdict_worst_case} (was {row.verdict})"
            )
    return lines


def answer_section(
    effects: pd.DataFrame, metric: str, figures: list[str], margin: float | None = None
) -> list[str]:
    """The answer in words, first (:func:`answer_lines`), with the rule it follows."""
    if effects is None or effects.empty:
        return []
    if (effects["verdict"] == UNTESTED).all():
        return [
            "## Answer",
            "",
            "One seed per configuration: no interval and no verdict (a difference between two runs is "
            "not evidence). Run more seeds (`seed=0,1,2,3,4`).",
            "",
        ]
    lines = answer_lines(effects, metric, margin)
    if not lines:
        return []
    method = "; ".join(sorted(set(effects["method"])))
    figure = ", `forest.png`" if "forest.png" in figures else ""
    return [
        "## Answer",
        "",
        *lines,
        "",
        f"(paired over seeds, {method}; a verdict is better / worse when its Holm-adjusted p < {ALPHA:g} "
        "over every compared factor's comparisons, and its interval is the Holm-consistent one, which "
        f"excludes 0 exactly then; details below{figure})",
        "",
    ]
