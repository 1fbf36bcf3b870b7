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
