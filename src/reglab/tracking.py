"""MLflow tracking: the store and one run per training job (the Lightning logger writing
epoch metrics into it is :mod:`reglab.epoch_logger`).

The embedded default store is ``sqlite:///<root>/outputs/mlflow.db`` (absolute path) with
artifacts under ``<root>/outputs/mlartifacts``; ``MLFLOW_TRACKING_URI`` or
``logger.tracking_uri`` point elsewhere (another database or a tracking server).
MLflow >= 3.13 refuses plain-folder stores, so a folder is never used implicitly.

The SQLite database is created (schema migrations, experiment, WAL journal) under a
file lock, so concurrent first use from several processes cannot race. Connections
wait up to 30 s on a busy database instead of failing.

MLflow is imported lazily: a process that never touches the store does not pay for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
PARAM_BATCH_LIMIT = 100  # params per log_batch request
METRIC_BATCH_LIMIT = 1000  # metrics per log_batch request


def disable_telemetry() -> None:
    """No network traffic from a run unless the user opted in (they set the variable)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def resolve_tracking_uri(configured: str | None, output_dir: str | Path) -> str:
    """``configured``, else ``$MLFLOW_TRACKING_URI``, else SQLite under ``output_dir``."""
    if configured:
        return str(configured)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, ``None`` for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def connection_uri(uri: str) -> str:
    """The URI the client connects with: SQLite gets a busy timeout."""
    if sqlite_path(uri) is not None and "?" not in uri:
        return f"{uri}?timeout={SQLITE_BUSY_TIMEOUT_S}"
    return uri


@contextlib.contextmanager
def _store_lock(database: Path | None) -> Iterator[None]:
    if database is None:
        yield
        return
    import fcntl

    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment(uri: str, experiment_name: str, artifact_location: str | None) -> str:
    """Create the store (if new) and the experiment (if missing); return the experiment id."""
    disable_telemetry()
    from mlflow import MlflowClient

    database = sqlite_path(uri)
    with _store_lock(database):
        fresh = database is not None and not database.exists()
        client = MlflowClient(tracking_uri=connection_uri(uri))
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            # A local store keeps artifacts in a fixed local folder; a tracking server
            # chooses (and serves) its own artifact root.
            local = database is not None and artifact_location
            location = Path(artifact_location).resolve().as_uri() if local else None
            experiment_id = client.create_experiment(experiment_name, artifact_location=location)
        if fresh:
            import sqlite3

            with contextlib.closing(sqlite3.connect(database)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
    return experiment_id


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"hidden": [64]}}`` -> ``{"model.hidden": "[64]"}``; lists as JSON."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = str(value)
    return flat


def git_commit(directory: str | Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class TrackedRun:
    """One MLflow run: created on :meth:`start`, closed by :meth:`finish` or :meth:`fail`."""

    def __init__(self, uri: str, experiment_id: str) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.experiment_id = experiment_id
        self.client = MlflowClient(tracking_uri=connection_uri(uri))
        self.run_id: str | None = None

    def start(self, run_name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags))
        self.run_id = run.info.run_id
        return self.run_id

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        truncated = [k for k, v in params.items() if len(v) > MAX_PARAM_LENGTH]
        for key in truncated:
            log.warning(
                "param %s is %d characters; MLflow keeps %d (the full value is in config.yaml)",
                key, len(params[key]), MAX_PARAM_LENGTH,
            )
        items = [Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), PARAM_BATCH_LIMIT):
            self.client.log_batch(self.run_id, params=items[start : start + PARAM_BATCH_LIMIT])
        if truncated:
            self.client.set_tag(self.run_id, "reglab.truncated_params", ",".join(truncated))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log_metric_rows([(key, float(value), step) for key, value in metrics.items()])

    def log_metric_rows(self, rows: list[tuple[str, float, int]]) -> None:
        """Write ``(key, value, step)`` rows in as few requests as MLflow allows."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, step) for key, value, step in rows]
        for start in range(0, len(items), METRIC_BATCH_LIMIT):
            self.client.log_batch(self.run_id, metrics=items[start : start + METRIC_BATCH_LIMIT])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException) -> None:
        """Mark the run FAILED (KILLED on interrupt) with the reason as a tag."""
        status = "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"
        reason = f"{type(error).__name__}: {error}"[:MAX_PARAM_LENGTH]
        try:
            self.client.set_tag(self.run_id, "reglab.failure_reason", reason)
            self.client.set_terminated(self.run_id, status)
        except Exception:  # the store itself may be what failed; keep the original error
            log.exception("could not mark MLflow run %s as %s", self.run_id, status)
