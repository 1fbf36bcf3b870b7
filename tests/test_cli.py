"""The command line end to end: real Hydra composition, real training, a real SQLite store.

Bad input on the command line (exit status 2, the key named, what is allowed, no run left) is
tested in test_bad_inputs.py."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import all_runs, run_cli, store_uri

EPOCH_METRICS = {
    "train/loss",
    "train/data_loss",
    "train/penalty",
    "train/acc",
    "val/loss",
    "val/acc",
    "val/f1",
    "val/ece",
    "weights/l1",
    "weights/l2",
    "weights/zero_fraction",
    "weights/near_zero_fraction",
}
FINAL_METRICS = {
    "test/loss",
    "test/acc",
    "test/f1",
    "test/ece",
    "fit/epochs",
    "fit/best_epoch",
    "fit/stopped_early",
    "fit/best_val_loss",
    "fit/seconds",
    "gap/loss",
    "gap/acc",
}


@pytest.mark.slow
def test_single_run_is_recorded_with_params_metrics_and_config(cli_single_run, tmp_path):
    done, output_dir = cli_single_run  # python train.py regularizer=elastic dropout=0.3 trainer.max_epochs=3
    assert done.returncode == 0, done.stderr
    runs = all_runs(store_uri(output_dir))
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "regularizer=elastic,dropout=0.3,trainer.max_epochs=3"
    params = run.data.params
    assert params["regularizer._target_"] == "reglab.regularizers.ElasticNet"
    assert float(params["regularizer.l1_ratio"]) == 0.5
    assert float(params["dropout"]) == 0.3 and float(params["model.dropout"]) == 0.3
    assert json.loads(params["model.hidden"]) == [256, 256]
    assert EPOCH_METRICS | FINAL_METRICS <= set(run.data.metrics)
    assert run.data.metrics["fit/epochs"] == 3
    assert run.data.metrics["test/acc"] > 0.8  # digits: 10 classes, chance 0.1
    assert run.data.tags["reglab.overrides"].split() == [
        "regularizer=elastic",
        "dropout=0.3",
        "trainer.max_epochs=3",
        f"paths.output_dir={output_dir}",
    ]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(output_dir))
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert (output_dir / "mlartifacts").is_dir()
    config_file = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert "ElasticNet" in open(config_file).read()
    with sqlite3.connect(output_dir / "mlflow.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.slow
def test_multirun_grid_leaves_one_finished_run_per_job(cli_sweep):
    done, output_dir = cli_sweep  # python train.py -m regularizer=none,l2 seed=0,1 ...: a 2 x 2 grid
    assert done.returncode == 0, done.stderr
    runs = all_runs(store_uri(output_dir))
    assert {r.info.status for r in runs} == {"FINISHED"}
    runs = [r for r in runs if "mlflow.parentRunId" in r.data.tags]  # the sweep's parent aside
    assert len(runs) == 4
    combos = {(r.data.params["regularizer._target_"], r.data.params["seed"]) for r in runs}
    assert len(combos) == 4


def test_help_lists_groups_and_options(output_dir):
    done = run_cli(["--help"], output_dir, timeout=60)
    assert done.returncode == 0
    for group, option in [
        ("regularizer", "elastic"),
        ("model", "mlp"),
        ("data", "digits"),
        ("trainer", "cpu"),
        ("optimizer", "adam"),
        ("logger", "mlflow"),
    ]:
        assert f"{group}: " in done.stdout and option in done.stdout
