"""Child processes (``python train.py ...``) measured from outside: wall time, peak RSS;
the MLflow store they write to."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from time import perf_counter

from bench.common import ROOT

_CHILDREN = itertools.count()


def child_env(**extra: str) -> dict:
    """This process's environment without an MLflow tracking URI or ``REGLAB_*`` settings,
    telemetry and warnings off, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("REGLAB_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def next_number() -> int:
    """A number naming a child's files in the work folder, unique in this process."""
    return next(_CHILDREN)


def _wait(process: subprocess.Popen, timeout: float):
    """``wait4`` the child (its own rusage), killing it after ``timeout`` seconds."""
    deadline = perf_counter() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            return status, usage
        if perf_counter() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            return status, usage
        time.sleep(0.005)


def run_child(command: list[str], work: Path, env: dict | None = None, timeout: float = 900) -> dict:
    """Run ``command`` in the repository root; wall time, peak RSS (this child's rusage
    from ``wait4``), pid, exit status, output, and the ``time.time()`` at its spawn and end."""
    number = next_number()
    out_path, err_path = work / f"child{number}.out", work / f"child{number}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        spawned = time.time()
        started = perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env or child_env(), stdout=out, stderr=err)
        status, usage = _wait(process, timeout)
        wall = perf_counter() - started
        ended = time.time()
        process.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "pid": process.pid,
        "returncode": process.returncode,
        "spawned": spawned,
        "ended": ended,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }
    if process.returncode != 0:
        tail = "\n".join(result["stderr"].splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    return result


def import_times(work: Path, output_dir: Path) -> dict:
    """Cumulative import seconds per top-level package in a real ``train.py`` run."""
    child = run_child(
        [
            sys.executable,
            "-X",
            "importtime",
            "train.py",
            "trainer.max_epochs=1",
            f"paths.output_dir={output_dir}",
        ],
        work,
    )
    own: dict[str, float] = {}  # self time of each package's own modules, whoever imported them
    pattern = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)")
    lines = [pattern.match(line) for line in child["stderr"].splitlines()]
    for match in filter(None, lines):
        root = match.group(3).split(".")[0].lstrip("_") or match.group(3)
        own[root] = own.get(root, 0.0) + int(match.group(1)) / 1e6
    top = dict(sorted(own.items(), key=lambda kv: -kv[1])[:12])
    return {
        "total_s": sum(own.values()),
        "modules": sum(1 for match in lines if match),
        "top_self_s": top,
        "wall_s_with_importtime": child["wall_s"],
    }


def create_store(output_dir: Path) -> None:
    """An existing store, as after a first run: database, schema, experiment ``reglab``."""
    from reglab import tracking

    tracking.disable_telemetry()
    uri = tracking.resolve_tracking_uri(None, output_dir)
    tracking.ensure_experiment(uri, "reglab", str(output_dir / "mlartifacts"))


def store_fit_seconds(database: Path) -> list[float]:
    """``fit/seconds`` of every active run in a SQLite MLflow store."""
    query = (
        "SELECT m.value FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
        "WHERE m.key = 'fit/seconds' AND r.lifecycle_stage = 'active'"
    )
    try:
        with sqlite3.connect(database) as connection:
            return [float(v) for (v,) in connection.execute(query)]
    except sqlite3.Error:  # schema changed: ask MLflow
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{database}")
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids) if ids else []
        return [r.data.metrics["fit/seconds"] for r in runs if "fit/seconds" in r.data.metrics]
