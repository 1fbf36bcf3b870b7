"""Where a ``train.py`` process spends its time: the spans reglab's own code path records
(:mod:`reglab.timing`) when the child is started with ``REGLAB_TIMINGS=<file>``.

Each span's time excludes the spans nested in it (:func:`reglab.timing.self_times`), so
the phases of one process add up to its wall time: ``import`` also holds the time from
spawning the child to its first span (interpreter start, module imports until
``reglab.cli.main`` hands over to Hydra), ``exit`` the time from the end of its last span
to its exit, ``other`` any time between its outermost spans.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from time import perf_counter

from bench.children import child_env, next_number, run_child

PHASE_ORDER = (
    "import",
    "config",
    "data",
    "store",
    "build",
    "fit",
    "test",
    "logging",
    "hydra",
    "sweep job",
    "sweep summary",
    "sweep report",
    "other",
    "exit",
)
PHASE_MEANING = {
    "import": "interpreter start and imports until Hydra starts + reglab.entry.import_run_modules "
    "(lightning, reglab's training modules, mlflow)",
    "config": "reglab.config.validate, sync_knobs, check_accelerator (pipeline.prepare, SweepTracking)",
    "data": "the data module's setup (load, split, standardize)",
    "store": "reglab.tracking.ensure_experiment (MLflow client on the store, experiment lookup)",
    "build": "rest of pipeline.prepare and pipeline.train: regularizer, optimizer, seed, model, "
    "RegularizedModule, callbacks, Trainer()",
    "fit": "Trainer.fit (minus the epoch logger's MLflow writes inside it)",
    "test": "Trainer.test (on the best-epoch weights, which BestWeights put back)",
    "logging": "MLflow: create run, params, config.yaml artifact, metrics, finish (a sweep's parent run)",
    "hydra": "rest of hydra.main: argument parsing, composing the config (per job in a sweep), run dir, "
    "logging setup, .hydra/*.yaml, job setup",
    "sweep job": "rest of reglab.sweeps.job.run_sweep_job: manifest, progress line, outcome file",
    "sweep summary": "SweepTracking.on_multirun_end without the report (jobs table, parent run)",
    "sweep report": "reglab.report.write_report (tables and plots of the sweep)",
    "other": "between the outermost spans (no span open)",
    "exit": "from the last span's end to the process having exited (gc.freeze, interpreter shutdown)",
}
# The spans one run records (hydra, import, config, data, build, store, logging, fit, test);
# a sweep adds one "sweep job" per job and the callbacks' "sweep summary" and "sweep report".
RUN_SPANS = ("hydra", "import", "config", "data", "build", "store", "logging", "fit", "test")
SWEEP_SPANS = (*RUN_SPANS, "sweep job", "sweep summary", "sweep report")


def phases_from_spans(spans, pid: int, spawned: float, ended: float) -> dict:
    """Phase seconds of process ``pid`` (spawned and ended on the ``time.time()`` clock):
    the self time of each span name, plus import (before the first span), other and exit."""
    from reglab.timing import self_times

    own = [s for s in spans if s.pid == pid]
    if not own:
        raise RuntimeError(f"process {pid} recorded no span (is REGLAB_TIMINGS read by reglab.timing?)")
    first = min(s.start for s in own)
    last = max(s.start + s.seconds for s in own)
    measured = self_times(own)
    other = (last - first) - sum(measured.values())
    phases = {"import": first - spawned + measured.pop("import", 0.0)}
    phases.update(measured)
    if other > 1e-3:
        phases["other"] = other
    phases["exit"] = ended - last
    ordered = {k: phases[k] for k in PHASE_ORDER if k in phases}
    ordered.update({k: v for k, v in phases.items() if k not in ordered})
    return {
        "phases_s": ordered,
        "calls": dict(Counter(s.name for s in own)),
        "other_processes": len({s.pid for s in spans} - {pid}),
    }


def run_phases(overrides: list[str], work: Path, expected: tuple[str, ...] = RUN_SPANS) -> dict:
    """``python train.py overrides`` with ``REGLAB_TIMINGS``: its wall, peak RSS and phases
    (summing to the wall), the spans per name, and the ``expected`` spans it did not record."""
    from reglab.timing import read_spans

    target = work / f"spans{next_number()}.jsonl"
    environment = child_env(REGLAB_TIMINGS=str(target))
    child = run_child([sys.executable, "train.py", *overrides], work, env=environment)
    found = phases_from_spans(read_spans(target), child["pid"], child["spawned"], child["ended"])
    return {
        "wall_s": child["wall_s"],
        "peak_rss_mb": child["peak_rss_mb"],
        **found,
        "missing_phases": [name for name in expected if name not in found["calls"]],
    }


def span_cost(count: int = 100_000) -> dict:
    """Microseconds a ``with span(...)`` block adds to an empty block, timing off (as in
    every run without ``REGLAB_TIMINGS``) and on (in memory); best of 5 rounds of ``count``.
    Not measured (None) when timing is on in this process already."""
    from reglab import timing

    if timing.enabled():
        return {"off_us": None, "on_us": None}

    def per_block(spans: bool) -> float:
        best = float("inf")
        for _ in range(5):
            started = perf_counter()
            for _ in range(count):
                if spans:
                    with timing.span("cost"):
                        pass
            best = min(best, perf_counter() - started)
            timing.clear()
        return best / count * 1e6

    base = per_block(False)
    off = per_block(True) - base
    timing.enable()
    try:
        on = per_block(True) - base
    finally:
        timing.disable()
        timing.clear()
    return {"off_us": off, "on_us": on}
