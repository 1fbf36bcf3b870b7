"""Smoke test of the performance benchmark: ``scripts/bench.py --quick`` runs all four
sections end to end (tiny sizes) and writes positive numbers to its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


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
    for section in ("loop", "penalty", "startup", "sweep"):
        assert section in results, f"section {section} missing"
        assert section in done.stdout

    (loop,) = results["loop"]["rows"]
    for key in ("reglab_s", "hand_s", "ratio", "reglab_ms_per_step", "hand_ms_per_step"):
        assert _positive(loop[key]), (key, loop[key])
    assert loop["val_loss_max_abs_diff"] < 1e-3  # the hand loop did the same work

    penalty = results["penalty"]["rows"]
    assert {r["regularizer"].split()[0] for r in penalty} == {"none", "l1", "l2", "elastic", "group_lasso"}
    assert all(_positive(r["ms_per_step"]) and _positive(r["ratio"]) for r in penalty)

    startup = results["startup"]
    assert _positive(startup["one_epoch_wall_s"]) and _positive(startup["one_epoch_peak_rss_mb"])
    for phase in ("import", "config", "data", "store", "fit", "test", "logging", "exit"):
        assert _positive(startup["phases_s"].get(phase)), (phase, startup["phases_s"])

    sweeps = results["sweep"]["rows"]
    assert [r["launcher"].split()[0] for r in sweeps] == ["basic", "joblib"]
    for row in sweeps:
        assert row["runs"] == 2
        for key in ("wall_s", "wall_per_run_s", "fit_sum_s", "peak_rss_mb"):
            assert _positive(row[key]), (row["launcher"], key, row[key])

    assert {t["met"] for t in results["targets"]} <= {True, False} and len(results["targets"]) >= 4
