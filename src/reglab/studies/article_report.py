"""The claims study's files: ``claims.csv`` (one row per prediction, decided),
``measurements.csv`` (per claim, context, arm and seed: the selected grid point and each
quantity) and ``claims.md`` (a verdict per claim, then per claim its experiment and its
predictions with the measured difference, its interval and verdict)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from reglab.studies import article


def number(value: float) -> str:
    """Four significant digits (``inf`` / ``nan`` as such)."""
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def measured(row) -> str:
    """``difference [low, high] (level %)`` of one decided prediction (without a test: the difference)."""
    if not math.isfinite(row.ci_low):
        return f"{number(row.mean_difference)} (n = {row.n}: no interval)"
    return (
        f"{number(row.mean_difference)} [{number(row.ci_low)}, {number(row.ci_high)}] "
        f"({100 * row.ci_level:.3g} %)"
    )


def verdict_text(row) -> str:
    """The verdict; an inconclusive one with the seeds a test needs to detect the margin."""
    if row.verdict != article.INCONCLUSIVE:
        return f"**{row.verdict}**"
    if math.isinf(row.seeds_needed):
        return "inconclusive: no number of seeds detects the margin (the test set's noise bounds it)"
    if math.isfinite(row.seeds_needed):
        return f"inconclusive: {int(row.seeds_needed)} seeds would detect ±{row.margin:g}"
    return "inconclusive"


def page(decided: pd.DataFrame, claims: Mapping, runs: Mapping[str, Mapping], heading: Sequence[str]) -> str:
    """``claims.md``: ``claims`` maps a claim's name to its ``Claim``; ``runs`` to its
    ``{fits, failed, seconds, grid_ends}``."""
    lines = ["# The article's claims, measured", "", *heading, ""]
    lines += ["| claim | verdict | fits (failed) | seconds |", "|---|---|---:|---:|"]
    for name, claim in claims.items():
        verdict = article.claim_verdict(list(decided.loc[decided.claim == name, "verdict"]))
        run = runs[name]
        lines.append(
            f"| {claim.claim} | **{verdict}** | {run['fits']} ({run['failed']}) | {run['seconds']:.0f} |"
        )
    for name, claim in claims.items():
        rows = decided[decided.claim == name]
        lines += ["", f"## {claim.claim}", "", f"`{name}`, {claim.seeds} seeds: {claim.experiment}", ""]
        lines += ["| prediction | margin | measured difference [interval] | test | verdict |"]
        lines += ["|---|---:|---|---|---|"]
        for row in rows.itertuples():
            test = f"{row.method}, p_Holm {number(row.p_holm)}"
            lines.append(
                f"| {row.prediction} | {row.margin:g} | {measured(row)} | {test} | {verdict_text(row)} |"
            )
        run = runs[name]
        if run["failed"]:
            lines += ["", f"{run['failed']} of its {run['fits']} fits FAILED (their MLflow runs say why)."]
        if run["grid_ends"]:
            lines += [
                "",
                f"At the grid's end (the optimum may lie outside it): {'; '.join(run['grid_ends'])}.",
            ]
    return "\n".join(lines) + "\n"


def write(
    decided: pd.DataFrame,
    measurements: pd.DataFrame,
    claims: Mapping,
    runs: Mapping[str, Mapping],
    folder: Path,
    heading: Sequence[str],
) -> list[Path]:
    """Write the three files into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "claims.csv", folder / "measurements.csv", folder / "claims.md"]
    decided.to_csv(paths[0], index=False)
    measurements.to_csv(paths[1], index=False)
    paths[2].write_text(page(decided, claims, runs, heading))
    return paths
