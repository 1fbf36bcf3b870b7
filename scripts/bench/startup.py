"""Section 3, ``startup``: one ``python train.py`` as a subprocess with an existing store:
wall, peak RSS, its phases (spans), the default run, import times."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.children import create_store, import_times, run_child
from bench.common import log
from bench.phases import run_phases, span_cost
from bench.stats import median


def _repeat(args, work: Path, one_epoch: list[str]) -> tuple[list[float], list[float], list[dict]]:
    """Per repeat a plain run (full mode) and a run with ``REGLAB_TIMINGS``: walls, peak
    RSSs (of the timed runs in quick mode) and the timed runs."""
    walls, rss, timed_runs = [], [], []
    for r in range(1 if args.quick else args.repeats):
        if not args.quick:
            child = run_child([sys.executable, "train.py", *one_epoch], work)
            walls.append(child["wall_s"])
            rss.append(child["peak_rss_mb"])
        timed_runs.append(run_phases(one_epoch, work))
        log(
            f"startup: repeat {r + 1}: "
            + (f"train.py {walls[-1]:.2f} s, " if walls else "")
            + f"timed run {timed_runs[-1]['wall_s']:.2f} s"
        )
    if args.quick:
        walls = [p["wall_s"] for p in timed_runs]
        rss = [p["peak_rss_mb"] for p in timed_runs]
    return walls, rss, timed_runs


def default_runs(args, work: Path, store: Path) -> dict:
    """The default ``python train.py`` (100 epochs, early stopping), ``repeats`` times."""
    defaults = [
        run_child([sys.executable, "train.py", f"paths.output_dir={store}"], work)
        for _ in range(args.repeats)
    ]
    output = defaults[-1]["stderr"] + defaults[-1]["stdout"]
    epochs = re.findall(r"'fit/epochs': ([\d.]+)", output)
    fit = re.findall(r"'fit/seconds': ([\d.]+)", output)
    return {
        "default_run_wall_s": median([c["wall_s"] for c in defaults]),
        "default_run_peak_rss_mb": max(c["peak_rss_mb"] for c in defaults),
        "default_run_epochs": float(epochs[-1]) if epochs else None,
        "default_run_fit_s": float(fit[-1]) if fit else None,
    }


def section_startup(args, work: Path) -> dict:
    store = work / "startup_outputs"
    one_epoch = ["trainer.max_epochs=1", f"paths.output_dir={store}"]
    out: dict = {"store": "existing", "command": "python train.py trainer.max_epochs=1"}
    out["span_cost_us"] = span_cost()
    if args.quick:
        log("startup: creating the store (reglab.tracking.ensure_experiment)")
        create_store(store)
    else:
        log("startup: creating the store (one run)")
        run_child([sys.executable, "train.py", *one_epoch], work)
    walls, rss, timed_runs = _repeat(args, work, one_epoch)
    out["one_epoch_wall_s"] = median(walls)
    out["one_epoch_peak_rss_mb"] = max(rss)
    names = list(timed_runs[0]["phases_s"])
    out["phases_s"] = {k: median([p["phases_s"].get(k, 0.0) for p in timed_runs]) for k in names}
    out["timed_run_wall_s"] = median([p["wall_s"] for p in timed_runs])
    out["phase_calls"] = timed_runs[0]["calls"]
    out["missing_phases"] = timed_runs[0]["missing_phases"]
    if not args.quick:
        out.update(default_runs(args, work, store))
        log("startup: python -X importtime")
        out["imports"] = import_times(work, store)
    return out
