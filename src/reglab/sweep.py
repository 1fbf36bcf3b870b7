"""Bookkeeping of a ``-m`` sweep shared by the launching process and its jobs.

The launching process (:class:`reglab.hydra_callbacks.SweepTracking`) publishes the
sweep's identity in environment variables; each job writes its outcome to
``<job dir>/outcome.json``, which works for any launcher on a shared file system and
also records jobs that failed before an MLflow run existed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENV_SWEEP_ID = "REGLAB_SWEEP_ID"
ENV_SWEEP_SIZE = "REGLAB_SWEEP_SIZE"
ENV_SWEEP_STARTED = "REGLAB_SWEEP_STARTED"
ENV_SWEEP_DIR = "REGLAB_SWEEP_DIR"
ENV_SIGNATURE = "REGLAB_SWEEP_SIGNATURE"
ENV_PARENT_RUN_ID = "REGLAB_PARENT_RUN_ID"
ENV_EXPERIMENT_ID = "REGLAB_EXPERIMENT_ID"
ENV_THREADS = "REGLAB_THREADS_PER_JOB"
OUTCOME_FILE = "outcome.json"


def count_jobs(overrides: Sequence[str], sweeper_params: Mapping[str, Any]) -> int:
    """Number of jobs of a basic-sweeper grid: product of the sweep lengths."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in sweeper_params.items()] + list(overrides)
    parsed = {o.get_key_element(): o for o in OverridesParser.create().parse_overrides(arguments)}
    return math.prod(
        len(list(o.sweep_string_iterator())) for o in parsed.values() if o.is_sweep_override()
    )


def signature(overrides: Sequence[str], sweeper_params: Mapping[str, Any]) -> str:
    """Same sweep command (grid and fixed overrides, ``resume`` aside) -> same signature."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith("resume"))
    text = json.dumps([kept, sorted((str(k), str(v)) for k, v in sweeper_params.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def threads_per_job(launcher: Any) -> int | None:
    """CPU threads per job when jobs run in parallel (joblib): cores / parallel jobs."""
    target = str(launcher.get("_target_", ""))
    if "Joblib" not in target:
        return None
    cores = os.cpu_count() or 1
    n_jobs = int(launcher.get("n_jobs", -1))
    parallel = cores if n_jobs < 1 else min(n_jobs, cores)
    return max(1, cores // parallel)


def kill_abandoned_runs(uri: str, experiment_id: str, sweep_signature: str) -> int:
    """Mark runs of an earlier launch of the same sweep still RUNNING as KILLED."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`reglab.sweep_signature` = '{sweep_signature}' and attributes.status = 'RUNNING'"
        ),
        max_results=10_000,
    )
    for run in runs:
        client.set_tag(run.info.run_id, "reglab.failure_reason", "abandoned by an interrupted sweep")
        client.set_terminated(run.info.run_id, "KILLED")
    return len(runs)


def finished_run_with_hash(uri: str, experiment_id: str, config_hash: str):
    """A FINISHED run of the experiment with this config hash, or ``None``."""
    from mlflow import MlflowClient

    runs = MlflowClient(tracking_uri=uri).search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`reglab.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'"
        ),
        max_results=1,
    )
    return runs[0] if runs else None


def write_outcome(job_dir: Path, **fields: Any) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / OUTCOME_FILE).write_text(json.dumps(fields, default=str))


def read_outcomes(sweep_dir: Path) -> list[dict[str, Any]]:
    outcomes = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{OUTCOME_FILE}")]
    return sorted(outcomes, key=lambda o: int(o["job"]))


def failed_so_far(sweep_dir: Path) -> int:
    return sum(o["status"] == "FAILED" for o in read_outcomes(sweep_dir))


def progress_line(job: int) -> str:
    """``job 3/12 of sweep <id>, 1 failed so far, 00:41 elapsed``."""
    size = os.environ.get(ENV_SWEEP_SIZE, "?")
    started = float(os.environ.get(ENV_SWEEP_STARTED, time.time()))
    elapsed = time.strftime("%H:%M:%S", time.gmtime(time.time() - started))
    failed = failed_so_far(Path(os.environ[ENV_SWEEP_DIR])) if ENV_SWEEP_DIR in os.environ else 0
    return (f"job {job + 1}/{size} of sweep {os.environ.get(ENV_SWEEP_ID, '?')}, "
            f"{failed} failed so far, {elapsed} elapsed")


def outcome_table(outcomes: list[dict[str, Any]]):
    import pandas as pd

    columns = ["job", "status", "overrides", "objective", "run_id", "reason"]
    return pd.DataFrame([{c: o.get(c) for c in columns} for o in outcomes], columns=columns)


def markdown(table) -> str:
    """A pandas table as a GitHub markdown table (without the tabulate dependency)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = [
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows]) + "\n"
