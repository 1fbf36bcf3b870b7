"""Sweep features around the jobs: the ``ddp`` refusal, threads per parallel job, and the
SLURM launcher config."""

from __future__ import annotations

import json
import math
import os
import re

import pytest
from conftest import ROOT, all_runs, run_cli, store_uri
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from reglab.config import compose, find_config_dir
from reglab.sweeps import outcomes
from reglab.sweeps.job import run_sweep_job
from reglab.sweeps.manifest import MANIFEST_FILE, SweepManifest, threads_per_job


def hydra_config(*overrides: str):
    """The full config, ``hydra`` node included, as ``python train.py -m OVERRIDES`` composes it."""
    with initialize_config_dir(config_dir=str(find_config_dir()), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=True)


# --------------------------------------------------------------------------- ddp in a sweep


def test_a_sweep_job_with_the_relaunching_ddp_strategy_fails_naming_ddp_spawn(output_dir, capsys):
    sweep_dir = output_dir / "multiruns" / "sweep"
    overrides = ["+trainer.strategy=ddp", f"paths.output_dir={output_dir}"]
    cfg = compose(overrides)
    objective = run_sweep_job(cfg, 0, sweep_dir / "0", sweep_dir, overrides, {})
    assert math.isnan(objective)
    (outcome,) = outcomes.read_outcomes(sweep_dir)
    assert outcome["status"] == "FAILED" and outcome["run_id"] is None
    assert outcome["reason"].startswith("ConfigError: trainer.strategy='ddp' is not allowed")
    assert "ddp_spawn" in outcome["reason"]
    assert "ddp_spawn" in capsys.readouterr().err
    assert all_runs(store_uri(output_dir)) == []  # refused before any run is created

    # the same job without the strategy trains
    plain = ["trainer.max_epochs=1", "callbacks=none", "logger=none", f"paths.output_dir={output_dir}"]
    objective = run_sweep_job(compose(plain), 1, sweep_dir / "1", sweep_dir, plain, {})
    assert math.isfinite(objective)
    assert [o["status"] for o in outcomes.read_outcomes(sweep_dir)] == ["FAILED", "FINISHED"]


@pytest.mark.slow
def test_a_ddp_sweep_on_the_command_line_fails_every_job_naming_ddp_spawn(output_dir):
    done = run_cli(["-m", "+trainer.strategy=ddp", "regularizer=none,l2", "trainer.max_epochs=1"], output_dir)
    assert done.returncode == 1
    assert "trainer.strategy='ddp' is not allowed in a -m sweep" in done.stderr
    (sweep_dir,) = [p.parent for p in output_dir.glob(f"multiruns/*/*/{MANIFEST_FILE}")]
    results = outcomes.read_outcomes(sweep_dir)
    assert [o["status"] for o in results] == ["FAILED", "FAILED"]
    assert all("ddp_spawn" in o["reason"] for o in results)
    assert SweepManifest.read(sweep_dir).threads_per_job is None  # basic launcher: one job at a time
    runs = all_runs(store_uri(output_dir))
    assert [(r.data.tags.get("reglab.kind"), r.info.status) for r in runs] == [("sweep", "FAILED")]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(output_dir))
    table = client.download_artifacts(runs[0].info.run_id, "summary/jobs.csv", str(output_dir))
    assert open(table).read().count("ddp_spawn") == 2


# --------------------------------------------------------------------------- threads per job


@pytest.mark.parametrize(
    ("overrides", "cores", "expected"),
    [
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2, 1),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 16, 8),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], 8, 2),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=32"], 8, 1),  # more jobs than cores
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-1"], 8, 1),  # -1: one job per core
        ([], 8, None),  # the basic launcher runs one job at a time
        (["hydra/launcher=local"], 8, None),
        (["hydra/launcher=slurm"], 8, None),
    ],
)
def test_threads_per_job_of_each_launcher(monkeypatch, overrides, cores, expected):
    launcher = hydra_config(*overrides).hydra.launcher
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert threads_per_job(launcher) == expected


@pytest.mark.slow
def test_a_joblib_sweep_writes_threads_per_job_to_its_manifest(cli_joblib_sweep):
    done, output_dir = cli_joblib_sweep  # -m hydra/launcher=joblib hydra.launcher.n_jobs=2 (4 jobs)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = output_dir.glob(f"multiruns/*/*/{MANIFEST_FILE}")
    cores = os.cpu_count() or 1
    assert json.loads(path.read_text())["threads_per_job"] == max(1, cores // min(2, cores))  # 2 cores: 1
    assert [o["status"] for o in outcomes.read_outcomes(path.parent)] == ["FINISHED"] * 4


# --------------------------------------------------------------------------- SLURM launcher


def test_the_slurm_launcher_composes_with_the_documented_keys():
    launcher = hydra_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    page = (ROOT / "docs" / "sweeps.md").read_text()  # "Running on a cluster"
    documented = re.search(r"\(conf/hydra/launcher/slurm\.yaml:(.*?)\)", page, re.S).group(1)
    keys = re.findall(r"`(\w+)`", documented)
    assert keys == ["partition", "gpus_per_node", "tasks_per_node", "timeout_min", "array_parallelism"]
    assert set(keys) <= set(launcher)
    assert launcher.partition == "gpu"
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.timeout_min > 0 and launcher.array_parallelism > 0

    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    built = instantiate(launcher)  # what Hydra builds for -m: submits nothing yet
    assert isinstance(built, SlurmLauncher) and built._EXECUTOR == "slurm"  # submitit's, or reglab's subclass
    assert (
        built.params["partition"] == "gpu" and built.params["array_parallelism"] == launcher.array_parallelism
    )
