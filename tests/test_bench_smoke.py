"""The benchmark (``scripts/bench/``) and :mod:`reglab.timing`, whose spans its phase tables
are made of.

Fast: the timing helper (off: nothing recorded and cheap; on: nested spans, the file a
child process writes), the phase accounting on known spans, and the loop and penalty
sections run in-process at their smallest sizes. Slow: ``train.py`` and a 2-run sweep
with ``REGLAB_TIMINGS`` (every phase's span recorded, phases adding up to the child's
wall time), and ``scripts/bench.py --quick`` end to end.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from argparse import Namespace

import pytest
from conftest import ROOT

from reglab import timing
from reglab.timing import Span, read_spans, self_times, span, timed

sys.path.insert(0, str(ROOT / "scripts"))

from bench import phases, render, targets  # noqa: E402
from bench.common import QUICK_SWEEP_GRID, REGULARIZERS  # noqa: E402


@pytest.fixture
def timing_off():
    """Timing off and no spans in memory, before and after (as in a run without the variable)."""
    was_on, path = timing.enabled(), timing._path
    timing.disable()
    timing.clear()
    yield
    timing.disable()
    timing.clear()
    if was_on:
        timing.enable(path)


def _finite_positive(value) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


# ----------------------------------------------------------------------------- reglab.timing


def test_spans_off_record_nothing(timing_off):
    @timed("call")
    def double(x):
        return 2 * x

    with span("a"):
        with span("b"):
            assert double(3) == 6
    assert timing.records() == []
    assert span("a") is span("b")  # one shared no-op object: nothing is allocated


def test_span_off_costs_well_under_a_microsecond(timing_off):
    cost = phases.span_cost(count=20_000)
    assert 0 <= cost["off_us"] < 1.0, cost
    assert cost["on_us"] > 0, cost
    assert timing.records() == [] and not timing.enabled()


def test_nested_spans_on(timing_off):
    timing.enable()

    @timed("call")
    def work():
        time.sleep(0.01)
        return "done"

    before = time.time()
    with span("outer"):
        with span("inner"):
            assert work() == "done"
        with pytest.raises(ValueError), span("failing"):
            raise ValueError("recorded all the same")
    after = time.time()

    spans = {s.name: s for s in timing.records()}
    assert [s.name for s in timing.records()] == ["call", "inner", "failing", "outer"]
    assert all(s.seconds >= 0 and s.pid == os.getpid() for s in spans.values())
    outer, inner, call = spans["outer"], spans["inner"], spans["call"]
    assert before <= outer.start <= inner.start <= call.start
    assert call.seconds >= 0.009 and inner.seconds >= call.seconds and outer.seconds >= inner.seconds
    assert outer.start + outer.seconds <= after + 1e-3
    own = self_times(timing.records())
    assert own["call"] == pytest.approx(call.seconds)
    assert own["inner"] == pytest.approx(inner.seconds - call.seconds, abs=1e-9)
    assert own["outer"] == pytest.approx(outer.seconds - inner.seconds - spans["failing"].seconds, abs=1e-9)
    assert sum(own.values()) == pytest.approx(outer.seconds)


def test_environment_variable_writes_the_file(tmp_path):
    target = tmp_path / "spans.jsonl"
    code = (
        "from reglab.timing import span\n"
        "with span('first'):\n    with span('nested'):\n        pass\n"
        "with span('second'):\n    pass\n"
    )
    before = time.time()
    child = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, timing.ENV: str(target)}, cwd=ROOT
    )
    assert child.wait(timeout=60) == 0
    spans = read_spans(target)
    assert sorted(s.name for s in spans) == ["first", "nested", "second"]
    assert {s.pid for s in spans} == {child.pid}
    assert all(before <= s.start <= time.time() and s.seconds >= 0 for s in spans)
    assert len(target.read_text().splitlines()) == 3  # one JSON line each


def test_read_spans_skips_a_cut_off_line(tmp_path):
    target = tmp_path / "spans.jsonl"
    line = json.dumps({"name": "fit", "start": 1.0, "seconds": 0.5, "pid": 7})
    target.write_text(line + "\n" + line[:20])
    assert read_spans(target) == [Span("fit", 1.0, 0.5, 7)]


# ----------------------------------------------------------------------------- phases


def test_phases_add_up_to_the_wall_time():
    spans = [
        Span("hydra", 10.0, 10.0, 1),
        Span("import", 11.0, 2.0, 1),
        Span("fit", 14.0, 2.0, 1),
        Span("logging", 15.0, 0.5, 1),  # inside fit: its time leaves fit
        Span("fit", 10.5, 99.0, 2),  # another process: not this one's phases
    ]
    found = phases.phases_from_spans(spans, pid=1, spawned=8.0, ended=21.0)
    assert found["phases_s"] == {
        "import": pytest.approx(4.0),  # 2 s before the first span + the import span
        "fit": pytest.approx(1.5),
        "logging": pytest.approx(0.5),
        "hydra": pytest.approx(6.0),
        "exit": pytest.approx(1.0),
    }
    assert list(found["phases_s"]) == ["import", "fit", "logging", "hydra", "exit"]  # PHASE_ORDER
    assert sum(found["phases_s"].values()) == pytest.approx(21.0 - 8.0)
    assert found["calls"] == {"hydra": 1, "import": 1, "fit": 1, "logging": 1}
    assert found["other_processes"] == 1
    with pytest.raises(RuntimeError, match="no span"):
        phases.phases_from_spans(spans, pid=3, spawned=8.0, ended=21.0)


def _check_timed_run(measured: dict, expected: tuple[str, ...]) -> None:
    assert measured["missing_phases"] == [], measured["calls"]
    assert set(expected) <= set(measured["calls"])
    found = measured["phases_s"]
    assert all(v >= 0 for v in found.values()), found
    assert _finite_positive(found["import"]) and _finite_positive(found["exit"])
    spans_only = sum(v for k, v in found.items() if k not in ("import", "exit"))
    assert spans_only <= measured["wall_s"]
    # spawn to exit, on the time.time() clock, vs the wall measured around wait4
    assert sum(found.values()) == pytest.approx(measured["wall_s"], rel=0.02, abs=0.05)


@pytest.mark.slow
def test_train_records_a_span_for_every_phase(tmp_path):
    from bench.children import create_store

    store = tmp_path / "outputs"
    create_store(store)
    measured = phases.run_phases(["trainer.max_epochs=1", f"paths.output_dir={store}"], tmp_path)
    _check_timed_run(measured, phases.RUN_SPANS)
    assert measured["calls"]["fit"] == 1 and measured["calls"]["test"] == 1
    assert measured["other_processes"] == 0


@pytest.mark.slow
def test_sweep_records_a_span_for_every_phase(tmp_path):
    from bench.sweep import run_sweep

    measured = run_sweep(QUICK_SWEEP_GRID, [], 1, tmp_path, "sweep", phases=True)
    assert measured["runs"] == 2
    _check_timed_run(measured, phases.SWEEP_SPANS)
    assert measured["calls"]["sweep job"] == 2 and measured["calls"]["fit"] == 2
    assert measured["calls"]["sweep summary"] == 1


# ----------------------------------------------------------------------------- sections


@pytest.fixture
def quick(timing_off) -> Namespace:
    return Namespace(quick=True, repeats=1, sweep_repeats=1)


def test_loop_section_quick(quick, tmp_path):
    from bench.loop import section_loop

    out = section_loop(quick, tmp_path)
    (row,) = out["rows"]
    for key in ("reglab_s", "hand_s", "reglab_ms_per_step", "hand_ms_per_step"):
        assert _finite_positive(row[key]), (key, row)
    assert row["steps"] > 0 and row["epochs"] == 2
    assert 0.5 < row["ratio"] < 100, row  # reglab cannot be 2x faster than the loop it wraps
    assert row["val_loss_max_abs_diff"] < 1e-3  # the hand loop did the same work

    results = {"meta": _meta(), "loop": out}
    results["targets"] = targets.targets(results)
    (target,) = results["targets"]
    assert target["met"] == (row["ratio"] <= 1.25)
    text = render.render(results)
    assert "## 1. loop" in text and "| digits MLP 64-256-256-10 | 2 |" in text
    assert "## targets" in text and "fit <= 1.25x hand loop" in text


def test_penalty_section_quick(quick, tmp_path, monkeypatch):
    from bench import penalty

    models, notes, batch = penalty.penalty_models(quick=True)
    assert models[0][0].startswith("MLP") and any("convnet" in label for label, _ in models)
    # the MLP only: a convnet step is 10-50 ms (the slow end-to-end test runs it)
    monkeypatch.setattr(penalty, "penalty_models", lambda quick: (models[:1], notes, batch))
    out = penalty.section_penalty(quick, tmp_path)
    models = {r["model"] for r in out["rows"]}
    assert len(out["rows"]) == len(REGULARIZERS) * len(models) and len(models) >= 1
    for row in out["rows"]:
        assert _finite_positive(row["ms_per_step"]) and _finite_positive(row["ratio"]), row
    none = [r for r in out["rows"] if r["regularizer"] == "none"]
    assert all(r["ratio"] == 1.0 and r["extra_ms_per_step"] == 0.0 for r in none)
    text = render.render({"meta": _meta(), "penalty": out, "targets": targets.targets({"penalty": out})})
    assert "## 2. penalty" in text
    assert text.count("| MLP 64-256-256-10, digits, batch 64 |") == len(REGULARIZERS)


def _meta() -> dict:
    machine = {"cpu": "cpu", "cores": 2, "torch_threads": 2, "versions": {"python": "3"}}
    loads = {"load_before": 0.0, "load_after": 0.0, "seconds": 1.0}
    return {"quick": True, "repeats": 1, "machine": machine, **loads}


def test_command_line_help_and_bad_section():
    shown = subprocess.run(
        [sys.executable, "scripts/bench.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "--wait-for-quiet" in shown.stdout and "--sections" in shown.stdout
    refused = subprocess.run(
        [sys.executable, "scripts/bench.py", "--sections", "loop,nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "nope" in refused.stderr


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_quick_benchmark_writes_all_sections(tmp_path):
    target = tmp_path / "bench.json"
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--quick", "--json", str(target)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(target.read_text())
    for section, title in (("loop", "## 1."), ("penalty", "## 2."), ("startup", "## 3."), ("sweep", "## 4.")):
        assert section in results and title in done.stdout, section

    (loop,) = results["loop"]["rows"]
    assert 0.5 < loop["ratio"] < 100 and loop["val_loss_max_abs_diff"] < 1e-3

    startup = results["startup"]
    assert _finite_positive(startup["one_epoch_wall_s"])
    assert _finite_positive(startup["one_epoch_peak_rss_mb"])
    assert startup["missing_phases"] == []
    for phase in ("import", "config", "data", "store", "build", "fit", "test", "logging", "hydra", "exit"):
        assert _finite_positive(startup["phases_s"].get(phase)), (phase, startup["phases_s"])
    assert sum(startup["phases_s"].values()) == pytest.approx(startup["timed_run_wall_s"], rel=0.02, abs=0.05)
    assert startup["span_cost_us"]["off_us"] < 1.0

    sweeps = results["sweep"]["rows"]
    assert [r["launcher"].split()[0] for r in sweeps] == ["basic", "joblib"]
    for row in sweeps:
        assert row["runs"] == 2
        for key in ("wall_s", "wall_per_run_s", "fit_sum_s", "peak_rss_mb"):
            assert _finite_positive(row[key]), (row["launcher"], key, row[key])
        assert row["fit_sum_s"] < row["wall_s"]

    stacked = results["stacked"]
    assert "## 5." in done.stdout and "hand-written stacked loop" in done.stdout
    assert stacked["ablation"]["stacked_finished"] == stacked["ablation"]["basic_finished"] == 4
    floor = stacked["floor"]["seconds"]
    assert all(_finite_positive(floor[k]) for k in ("products", "no_dropout", "dropout"))
    assert floor["products"] < floor["no_dropout"]  # the loop does the products and more
    (sweep,) = stacked["bookkeeping"]["rows"]  # where a stacked sweep's time goes
    assert sweep["runs"] == 6 and "bookkeeping ms / member" in done.stdout
    parts = ("startup_s", "planning_s", "training_s", "bookkeeping_s", "end_s")
    assert all(_finite_positive(sweep[k]) for k in (*parts, "basic_estimated_s")), sweep
    assert sum(sweep[k] for k in parts) <= sweep["wall_s"] * 1.02

    assert {t["met"] for t in results["targets"]} <= {True, False} and len(results["targets"]) >= 4
