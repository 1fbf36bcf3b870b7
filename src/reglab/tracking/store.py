"""The MLflow store and experiment.

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
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reglab.timing import timed

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30
# The MLflow UI opens an experiment of this kind on its training runs (without it, MLflow 3
# opens a new experiment on its GenAI traces view, which shows no runs).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"


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
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # a store made before the tag
                client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)
        else:
            # A local store keeps artifacts in a fixed local folder; a tracking server
            # chooses (and serves) its own artifact root.
            local = database is not None and artifact_location
            location = Path(artifact_location).resolve().as_uri() if local else None
            experiment_id = client.create_experiment(
                experiment_name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT}
            )
        if fresh:
            import sqlite3

            with contextlib.closing(sqlite3.connect(database)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
    return experiment_id


@timed("store")
def experiment_of(cfg: Any) -> tuple[str, str]:
    """``(tracking URI, experiment id)`` of a composed config: the URI from ``logger`` and
    ``paths`` (:func:`resolve_tracking_uri`), the experiment ``logger.experiment_id`` when a
    sweep has set it, else created or looked up by name (:func:`ensure_experiment`)."""
    logger = cfg.logger
    uri = resolve_tracking_uri(logger.tracking_uri, cfg.paths.output_dir)
    experiment_id = logger.get("experiment_id") or ensure_experiment(
        uri, logger.experiment_name, logger.artifact_location
    )
    return uri, str(experiment_id)
