"""Shared helpers: a private MLflow store per test and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``paths.output_dir``; its ``mlflow.db`` is the store the job uses."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    out = tmp_path / "outputs"
    out.mkdir()
    return out


def store_uri(output_dir: Path) -> str:
    return f"sqlite:///{output_dir / 'mlflow.db'}"


def run_cli(
    args: list[str],
    output_dir: Path,
    timeout: float = 600,
    env: dict | None = None,
    python_flags: tuple[str, ...] = (),
):
    """``python [PYTHON_FLAGS] train.py ARGS paths.output_dir=OUTPUT_DIR`` in the repository root."""
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, *python_flags, "train.py", *args, f"paths.output_dir={output_dir}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def all_runs(uri: str):
    """Every run of every experiment in the store at ``uri`` (empty if there is no store)."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        return []
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiment_ids) if experiment_ids else []


def child_runs(output_dir: Path):
    """The job runs of the store in ``output_dir``: every run but sweeps' parent runs."""
    return [r for r in all_runs(store_uri(output_dir)) if r.data.tags.get("reglab.kind") != "sweep"]


def run_cli_counting_imports(
    args: list[str], output_dir: Path
) -> tuple[subprocess.CompletedProcess, set[str]]:
    """:func:`run_cli` under ``python -X importtime``: the process, with its stderr stripped of
    the import lines, and the top-level packages it imported (``torch``, ``lightning``, ...)."""
    done = run_cli(args, output_dir, python_flags=("-X", "importtime"))
    imported, kept = set(), []
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if not name.startswith("package"):
                imported.add(name.split(".")[0])
        else:
            kept.append(line)
    done.stderr = "\n".join(kept) + ("\n" if kept else "")
    return done, imported


# One CLI run and two CLI sweeps that several tests only read (each test checks its own part of
# what the command printed and recorded); they run once per session, in a folder of their own.
SINGLE_RUN = ["regularizer=elastic", "dropout=0.3", "trainer.max_epochs=3"]
SWEEP = ["-m", "regularizer=none,l2", "seed=0,1", "model.hidden=[16]", "trainer.max_epochs=2"]
JOBLIB_SWEEP = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "regularizer=none,l1,l2,elastic"]
JOBLIB_SWEEP += ["model.hidden=[16]", "trainer.max_epochs=2"]
DIVERGING_SWEEP = ["-m", "optimizer=adam,sgd", "optimizer.lr=0.01,50", "trainer.max_epochs=2"]


def _shared_cli(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str]):
    output = tmp_path_factory.mktemp(name) / "outputs"
    output.mkdir()
    return run_cli(args, output, env={"MLFLOW_DISABLE_TELEMETRY": "true"}), output


@pytest.fixture(scope="session")
def cli_single_run(tmp_path_factory):
    """``(process, output dir)`` of ``python train.py SINGLE_RUN``: one run, 3 epochs."""
    return _shared_cli(tmp_path_factory, "single_run", SINGLE_RUN)


@pytest.fixture(scope="session")
def cli_sweep(tmp_path_factory):
    """``(process, output dir)`` of ``python train.py SWEEP``: 2 regularizers x 2 seeds."""
    return _shared_cli(tmp_path_factory, "sweep", SWEEP)


@pytest.fixture(scope="session")
def cli_joblib_sweep(tmp_path_factory):
    """``(process, output dir)`` of ``python train.py JOBLIB_SWEEP``: 4 jobs, 2 at a time."""
    return _shared_cli(tmp_path_factory, "joblib_sweep", JOBLIB_SWEEP)


@pytest.fixture(scope="session")
def cli_diverging_sweep(tmp_path_factory):
    """``(process, output dir)`` of ``python train.py DIVERGING_SWEEP``: lr=50 diverges for both
    optimizers (SGD to a non-finite loss, Adam to a finite one far above the untrained loss)."""
    return _shared_cli(tmp_path_factory, "diverging_sweep", DIVERGING_SWEEP)
