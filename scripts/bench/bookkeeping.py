"""Section 5, ``stacked``, continued: where a stacked sweep's wall time goes.

Synthetic linear models, 30 epochs each: the 240-run sweep (``regularizer=l1,l2,elastic`` x 4
strengths x 20 seeds, 2 stacks of 120) and a 1,000-run one (``regularizer=l1,l2`` x 5
strengths x 100 seeds, 8 stacks of 125), each with ``hydra/launcher=stacked`` as a child
process recording reglab's spans (:mod:`reglab.timing`). Its wall time is split into

- start-up: the process's start to the launcher's first job (imports, Hydra, the store and
  the parent run) and the imports done later (``import`` spans);
- planning: every job composed, checked and grouped (``sweep plan``);
- training: each stack's set-up and fit (``stack``, ``fit``);
- bookkeeping: what is done per member outside the fit: its folder, data split and model
  (``sweep prepare``), and its stack's test and records when they were not done while a later
  stack trained (``records``: the sweep waiting for them; ``test`` when a stack is tested in
  the sweep's own thread);
- the end: the sweep's summary and report, and the exit.

Bookkeeping per member is bookkeeping / runs (target: <= 20 ms). The basic launcher's time
for the same sweep is estimated from a sample of its jobs (8, ``--quick`` 1) run with it: its
fixed cost (start-up and end) plus the runs times the mean ``sweep job`` span.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.children import child_env, create_store, next_number, run_child
from bench.common import log

COMMON = ["data=synthetic", "model=linear", "trainer.max_epochs=30"]
SWEEPS = {
    240: [*COMMON, "regularizer=l1,l2,elastic", "regularizer.strength=1e-4,1e-3,1e-2,1e-1", "seed=range(20)"],
    1000: [*COMMON, "regularizer=l1,l2", "regularizer.strength=1e-5,1e-4,1e-3,1e-2,1e-1", "seed=range(100)"],
}
BASIC_SAMPLE = [*COMMON, "regularizer=l1,l2", "regularizer.strength=1e-4,1e-1", "seed=0,1"]  # 8 runs
QUICK_SWEEPS = {
    6: ["data=synthetic", "model=linear", "trainer.max_epochs=2", "regularizer=l1,l2", "seed=0,1,2"]
}
QUICK_BASIC_SAMPLE = ["data=synthetic", "model=linear", "trainer.max_epochs=2", "regularizer=l1", "seed=0"]
TARGET_BOOKKEEPING_MS = 20.0


def timed_sweep(grid: list[str], launcher: str, work: Path) -> tuple[dict, list]:
    """Run the sweep as a child recording spans; its measurement and its own spans."""
    from reglab.timing import read_spans

    output = work / f"bookkeeping_{launcher}_{next_number()}"
    create_store(output)
    spans_file = work / f"{output.name}.spans"
    command = [
        sys.executable,
        "train.py",
        "-m",
        *grid,
        f"hydra/launcher={launcher}",
        f"paths.output_dir={output}",
    ]
    measured = run_child(command, work, env=child_env(REGLAB_TIMINGS=str(spans_file)), timeout=7200)
    spans = [s for s in read_spans(spans_file) if s.pid == measured["pid"]]
    return measured, spans


def split(measured: dict, spans: list, runs: int) -> dict:
    """The stacked sweep's wall time by part (see the module docstring)."""

    def total(*names: str) -> float:
        return sum(s.seconds for s in spans if s.name in names)

    plan = [s for s in spans if s.name == "sweep plan"]
    first = min(s.start for s in plan) if plan else measured["spawned"]
    main = [s for s in spans if s.name in ("sweep prepare", "stack", "fit", "test", "records")]
    last = max((s.start + s.seconds for s in main), default=first)
    parts = {
        "startup_s": first - measured["spawned"] + total("import"),
        "planning_s": total("sweep plan"),
        "training_s": total("stack", "fit"),
        "bookkeeping_s": total("sweep prepare", "test", "records"),
        "end_s": measured["ended"] - last,
    }
    parts["other_s"] = measured["wall_s"] - sum(parts.values())
    parts["bookkeeping_ms_per_member"] = 1e3 * parts["bookkeeping_s"] / runs
    parts["planning_ms_per_member"] = 1e3 * parts["planning_s"] / runs
    return parts


def basic_sample(grid: list[str], work: Path) -> dict:
    """A sample of jobs run by the basic launcher: its fixed cost (outside the jobs) and its
    mean job, from which a sweep of N runs is estimated as fixed + N x per run."""
    measured, spans = timed_sweep(grid, "basic", work)
    jobs = [s for s in spans if s.name == "sweep job"]
    per_job = sum(s.seconds for s in jobs) / len(jobs)
    fixed = measured["wall_s"] - sum(s.seconds for s in jobs)
    return {
        "sample_runs": len(jobs),
        "sample_wall_s": measured["wall_s"],
        "per_run_s": per_job,
        "fixed_s": fixed,
    }


def section_bookkeeping(quick: bool, work: Path) -> dict:
    sweeps = QUICK_SWEEPS if quick else SWEEPS
    basic = basic_sample(QUICK_BASIC_SAMPLE if quick else BASIC_SAMPLE, work)
    rows = []
    for runs, grid in sweeps.items():
        log(f"stacked: bookkeeping of {runs} runs, {' '.join(grid)}")
        measured, spans = timed_sweep(grid, "stacked", work)
        row = {
            "runs": runs,
            "grid": " ".join(grid),
            "wall_s": measured["wall_s"],
            **split(measured, spans, runs),
        }
        row["basic_estimated_s"] = basic["fixed_s"] + runs * basic["per_run_s"]
        log(
            f"stacked: {runs} runs in {measured['wall_s']:.1f} s, bookkeeping "
            f"{row['bookkeeping_ms_per_member']:.1f} ms per member (basic ~{row['basic_estimated_s']:.0f} s)"
        )
        rows.append(row)
    return {"basic_sample": basic, "rows": rows, "target_ms": TARGET_BOOKKEEPING_MS}
