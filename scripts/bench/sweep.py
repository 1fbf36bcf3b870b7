"""Section 4, ``sweep``: the per-run cost of a ``-m`` multirun, basic and joblib launchers;
full mode splits it into fixed and marginal parts and into phases (spans)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.children import create_store, run_child, store_fit_seconds
from bench.common import JOBLIB, QUICK_SWEEP_GRID, SWEEP_GRID, log
from bench.phases import SWEEP_SPANS, run_phases
from bench.stats import median


def run_sweep(
    grid: list[str], launcher: list[str], epochs: int, work: Path, name: str, phases: bool = False
) -> dict:
    """One sweep into a fresh existing store: wall, fit seconds of its runs, per-run
    overhead; with ``phases`` run with ``REGLAB_TIMINGS`` and split into phases."""
    output = work / name
    create_store(output)
    overrides = ["-m", *grid, f"trainer.max_epochs={epochs}", *launcher, f"paths.output_dir={output}"]
    if phases:
        measured = run_phases(overrides, work, expected=SWEEP_SPANS)
    else:
        measured = run_child([sys.executable, "train.py", *overrides], work)
    fits = store_fit_seconds(output / "mlflow.db")
    runs = len(fits)
    if runs == 0:
        raise RuntimeError(f"sweep {name}: no run with fit/seconds in {output / 'mlflow.db'}")
    wall = measured["wall_s"]
    result = {
        "runs": runs,
        "wall_s": wall,
        "wall_per_run_s": wall / runs,
        "fit_sum_s": sum(fits),
        "overhead_per_run_s": (wall - sum(fits)) / runs,
        "peak_rss_mb": measured["peak_rss_mb"],
    }
    if phases:
        result["phases_s"] = measured["phases_s"]
        result["missing_phases"] = measured["missing_phases"]
        result["calls"] = measured["calls"]
    return result


def _launcher_sweeps(args, work: Path, grid: list[str], epochs: int, launchers) -> dict[str, list[dict]]:
    """Each launcher's sweeps: at once in quick mode (a smoke test), else one after the other."""
    if args.quick:  # a smoke test: both launchers at once (see --quick in the package docstring)
        log(f"sweep: basic and joblib at once, {' '.join(grid)}")
        with ThreadPoolExecutor(len(launchers)) as pool:
            futures = [
                pool.submit(run_sweep, grid, launcher, epochs, work, f"sweep_{label.split()[0]}")
                for label, launcher in launchers
            ]
            return {label: [future.result()] for (label, _), future in zip(launchers, futures, strict=True)}
    done = {}
    for label, launcher in launchers:
        done[label] = []
        for r in range(args.sweep_repeats):
            log(f"sweep: {label}, {len(grid)}-knob grid, repeat {r + 1}")
            done[label].append(run_sweep(grid, launcher, epochs, work, f"sweep_{label.split()[0]}_{r}"))
    return done


def split_overhead(big: dict, small: dict) -> dict:
    """A sweep's overhead as a fixed part plus a marginal part per run, from two grid sizes."""
    marginal = ((big["wall_s"] - big["fit_sum_s"]) - (small["wall_s"] - small["fit_sum_s"])) / (
        big["runs"] - small["runs"]
    )
    fixed = (small["wall_s"] - small["fit_sum_s"]) - small["runs"] * marginal
    return {"small_grid": small, "marginal_overhead_per_run_s": marginal, "fixed_overhead_s": fixed}


def section_sweep(args, work: Path) -> dict:
    grid = QUICK_SWEEP_GRID if args.quick else SWEEP_GRID
    epochs = 1 if args.quick else 2
    launchers = (("basic", []), ("joblib n_jobs=2", JOBLIB))
    done = _launcher_sweeps(args, work, grid, epochs, launchers)
    rows = []
    for label, _ in launchers:
        measured = done[label]
        row = {"launcher": label, "grid": " ".join(grid), "epochs": epochs}
        for key in measured[0]:
            row[key] = median([m[key] for m in measured])
        rows.append(row)
    out: dict = {"rows": rows}
    if not args.quick:
        log("sweep: basic, 2-run grid (fixed vs marginal cost)")
        out["split"] = split_overhead(rows[0], run_sweep(QUICK_SWEEP_GRID, [], epochs, work, "sweep_small"))
        log("sweep: basic, 12-run grid with REGLAB_TIMINGS (phases)")
        out["phases"] = run_sweep(grid, [], epochs, work, "sweep_phases", phases=True)
    return out
