"""Multirun sweeps: parent and child runs, failure tolerance, resume, presets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, all_runs, run_cli, store_uri

from reglab.config import compose_with_choices
from reglab.sweeps import manifest, outcomes


def _sweep_parts(uri: str):
    runs = all_runs(uri)
    parents = [r for r in runs if r.data.tags.get("reglab.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


@pytest.mark.slow
def test_a_diverging_job_fails_alone_and_the_sweep_reports_it(cli_diverging_sweep, tmp_path):
    # -m optimizer=adam,sgd optimizer.lr=0.01,50 trainer.max_epochs=2
    done, output_dir = cli_diverging_sweep
    assert done.returncode == 1
    log = done.stdout + done.stderr
    assert "job 1/4 of sweep" in log and "job 4/4 of sweep" in log
    assert "3 done (1 failed)" in log and "2 failed" in log
    (parent,), children = _sweep_parts(store_uri(output_dir))
    # lr=50 diverges for both optimizers: SGD to a non-finite loss, Adam to a finite loss far
    # above the untrained one (reglab.divergence); both are FAILED with the reason.
    assert sorted(r.info.status for r in children) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    failed = [r for r in children if r.info.status == "FAILED"]
    assert sorted(r.data.params["choice.optimizer"] for r in failed) == ["adam", "sgd"]
    assert all(float(r.data.params["optimizer.lr"]) == 50 for r in failed)
    assert all("diverged" in r.data.tags["reglab.failure_reason"] for r in failed)
    sweep_id = parent.data.tags["reglab.sweep_id"]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["reglab.sweep_id"] == sweep_id
        assert len(child.data.tags["reglab.config_hash"]) == 16
    assert len({c.data.tags["reglab.config_hash"] for c in children}) == 4
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/failed"] == 2 and parent.data.metrics["sweep/jobs"] == 4
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(output_dir))
    summary = [a.path for a in client.list_artifacts(parent.info.run_id, "summary")]
    assert {"summary/jobs.csv", "summary/jobs.md"} <= set(summary)
    table = client.download_artifacts(parent.info.run_id, "summary/jobs.md", str(tmp_path))
    assert "FAILED" in open(table).read()


def _outcomes(output_dir):
    return [o for d in output_dir.glob("multiruns/*/*") for o in outcomes.read_outcomes(d)]


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_only_the_missing_configs(output_dir):
    args = ["-m", "regularizer=none,l1,l2,elastic", "trainer.max_epochs=3", f"paths.output_dir={output_dir}"]
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while sum(o["status"] == "FINISHED" for o in _outcomes(output_dir)) < 2:
        assert process.poll() is None and time.time() < deadline, "sweep ended before it was killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {
        r.data.tags["reglab.config_hash"]
        for r in all_runs(store_uri(output_dir))
        if r.info.status == "FINISHED" and "reglab.config_hash" in r.data.tags
    }
    assert 2 <= len(finished_before) < 4

    done = run_cli([*args[:-1], "+resume=true"], output_dir)
    assert done.returncode == 0, done.stderr
    runs = all_runs(store_uri(output_dir))
    assert "RUNNING" not in {r.info.status for r in runs}
    finished = [r for r in runs if r.info.status == "FINISHED" and "reglab.config_hash" in r.data.tags]
    assert len({r.data.tags["reglab.config_hash"] for r in finished}) == 4
    assert len(finished) == 4  # nothing trained twice
    resumed = outcomes.read_outcomes(sorted(output_dir.glob("multiruns/*/*"))[-1])
    assert sum(o["status"] == "SKIPPED" for o in resumed) == len(finished_before)
    assert sum(o["status"] == "FINISHED" for o in resumed) == 4 - len(finished_before)


@pytest.mark.parametrize(
    ("preset", "jobs"), [("ablation", 640), ("lasso_path", 7), ("mnist1d", 80), ("zou_hastie", 1920)]
)
def test_sweep_presets_compose_and_size(preset, jobs):
    cfg, choices = compose_with_choices([f"experiment={preset}"])
    assert choices["experiment"] == preset
    from hydra import compose, initialize_config_dir

    from reglab.config import find_config_dir

    with initialize_config_dir(config_dir=str(find_config_dir()), version_base="1.3"):
        full = compose("train", overrides=[f"experiment={preset}"], return_hydra_config=True)
    params = {k: str(v) for k, v in full.hydra.sweeper.params.items()}
    assert manifest.count_jobs([], params) == jobs


def test_every_regularizer_of_the_ablation_preset_instantiates():
    from hydra.utils import instantiate

    for regularizer in ("none", "l1", "l2", "elastic"):  # with each strength of the tuned grid
        for strength in (2e-2, 2e-3, 2e-4, 2e-5):
            overrides = [
                "experiment=ablation",
                f"regularizer={regularizer}",
                f"regularizer.strength={strength}",
            ]
            cfg, _ = compose_with_choices(overrides)
            assert instantiate(cfg.regularizer).strength == strength
            assert list(cfg.study.tuned) == ["optimizer.lr", "regularizer.strength"]
            assert cfg.callbacks.early_stopping is None
