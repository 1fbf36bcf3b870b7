"""Finished runs written whole, many at once: the members of a stack.

Once a stack is trained and tested, everything its members' MLflow runs hold is known (name,
tags, params, per-epoch and final metrics, config text, status), so each run is written whole
instead of call by call (:class:`FinishedRun`, :func:`write_runs`):

- into an SQLite store (the embedded default), the runs of a batch are rows inserted in one
  transaction into MLflow's own tables (the models of its ``SqlAlchemyStore``, with the values
  its ``create_run`` and ``log_batch`` would store). A run exists from its first moment with
  its final status and everything in it: a process killed while writing leaves none of the
  batch, and never a run RUNNING. Each run's text artifacts are written into its artifact
  folder before the commit;
- into any other store (a tracking server, another database), each run as MLflow's client
  writes it, in as few requests as its API allows: ``create_run`` with the tags, ``log_batch``
  with the params and metrics (100 params and 1,000 metrics a request), the texts,
  ``set_terminated``.

Both ways store the same name, params, tags and metrics (``tests/test_stacked_records.py``),
redacted and truncated as :class:`~reglab.tracking.run.TrackedRun` does.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from reglab.tracking.redaction import redact
from reglab.tracking.run import METRIC_BATCH_LIMIT, PARAM_BATCH_LIMIT, loggable_params
from reglab.tracking.store import connection_uri, sqlite_path

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"


@dataclasses.dataclass
class FinishedRun:
    """One run as it ends: ``metrics`` are ``(key, value, step)`` rows, ``texts`` the text
    artifacts by file name; ``run_id`` is set once written."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]
    status: str = "FINISHED"
    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    start_ms: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    run_id: str | None = None

    def stored(self) -> FinishedRun:
        """The run as the store keeps it: secrets redacted, long params truncated (their keys
        in the tag ``reglab.truncated_params``)."""
        params, truncated = loggable_params(self.params)
        tags = {k: redact(str(v)) for k, v in self.tags.items()}
        if truncated:
            tags["reglab.truncated_params"] = ",".join(truncated)
        texts = {name: redact(text) for name, text in self.texts.items()}
        return dataclasses.replace(self, name=redact(self.name), tags=tags, params=params, texts=texts)


def write_runs(uri: str, experiment_id: str, runs: Sequence[FinishedRun]) -> None:
    """Write ``runs`` (see the module docstring) into experiment ``experiment_id``; each one's
    ``run_id`` is set."""
    if not runs:
        return
    stored = [run.stored() for run in runs]
    if sqlite_path(uri) is not None:
        _insert(uri, experiment_id, stored)
    else:
        for run in stored:
            _write_with_client(uri, experiment_id, run)
    for run, written in zip(runs, stored, strict=True):
        run.run_id = written.run_id


@functools.cache
def _sql_store(uri: str):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(connection_uri(uri), str(Path(tempfile.gettempdir()) / "mlruns-unused"))


def _insert(uri: str, experiment_id: str, runs: list[FinishedRun]) -> None:
    """All ``runs`` in one transaction (rows as ``create_run`` / ``log_batch`` / ``set_terminated``
    store them), their texts first."""
    from mlflow.entities import LifecycleStage, SourceType
    from mlflow.exceptions import MlflowException
    from mlflow.utils.uri import append_to_uri_path

    store = _sql_store(uri)
    experiment = store.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise MlflowException(f"the experiment {experiment_id} is deleted: no runs can be written into it")
    end_ms = int(time.time() * 1000)
    rows: dict[str, list[tuple]] = {"runs": [], "tags": [], "params": [], "metrics": [], "latest_metrics": []}
    for run in runs:
        run.run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(experiment.artifact_location, run.run_id, "artifacts")
        _write_texts(artifact_uri, run.texts)
        tags = {**run.tags, RUN_NAME_TAG: run.name}
        described = dict(
            run_uuid=run.run_id,
            name=run.name,
            source_type=SourceType.to_string(SourceType.UNKNOWN),
            source_name="",
            entry_point_name="",
            user_id=tags.get(USER_TAG, "unknown"),
            status=run.status,
            start_time=run.start_ms,
            end_time=end_ms,
            deleted_time=None,
            source_version="",
            lifecycle_stage=LifecycleStage.ACTIVE,
            artifact_uri=artifact_uri,
            experiment_id=int(experiment_id),
        )
        rows["runs"].append(tuple(described[c] for c in COLUMNS["runs"]))
        rows["tags"] += [(k, v, run.run_id) for k, v in tags.items()]
        rows["params"] += [(k, v, run.run_id) for k, v in run.params.items()]
        metrics = _metric_rows(store, run.run_id, run.metrics, end_ms)
        rows["metrics"] += metrics
        rows["latest_metrics"] += _latest(metrics)
    with store.ManagedSessionMaker() as session:  # one commit, at the end
        connection = session.connection()
        for table, values in rows.items():
            if values:
                _insert_rows(connection, table, values)


# The columns of MLflow's tables (its SqlRun, SqlTag, SqlParam, SqlMetric and SqlLatestMetric
# models) that a run's rows fill, in the order of the tuples below; tests/test_stacked_records.py
# compares what is stored with MLflow's own client writing the same runs.
COLUMNS = {
    "runs": (
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "deleted_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
    ),
    "tags": ("key", "value", "run_uuid"),
    "params": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
}
KEY, VALUE, TIMESTAMP, STEP = range(4)  # positions in a metric row


def _insert_rows(connection, table: str, rows: list[tuple]) -> None:
    """``rows`` (tuples in the order of ``COLUMNS[table]``) into ``table`` in one
    ``executemany`` of the driver: one statement for all rows, without SQLAlchemy's per-row
    parameter processing (most of the insert's time for a stack's ~60,000 metric rows; the
    values are already the columns' types: str, int, float, bool, None)."""
    quote = connection.dialect.identifier_preparer.quote
    columns = COLUMNS[table]
    statement = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    connection.exec_driver_sql(statement, rows)


def _metric_rows(store, run_id: str, metrics: list[tuple[str, float, int]], timestamp: int) -> list[tuple]:
    """``metrics`` as the store's rows (NaN and infinities as its ``log_batch`` stores them),
    duplicates once."""
    rows: dict[tuple, tuple] = {}
    for key, value, step in metrics:
        value = float(value)
        is_nan, stored = (False, value) if math.isfinite(value) else store.sanitize_metric_value(value)
        rows.setdefault((key, stored, int(step), is_nan), (key, stored, timestamp, int(step), is_nan, run_id))
    return list(rows.values())


def _latest(rows: list[tuple]) -> list[tuple]:
    """Each key's latest row, by MLflow's rule: the largest ``(step, timestamp, value)``."""
    latest: dict[str, tuple] = {}
    for row in rows:
        current = latest.get(row[KEY])
        if current is None or (row[STEP], row[TIMESTAMP], row[VALUE]) > (
            current[STEP],
            current[TIMESTAMP],
            current[VALUE],
        ):
            latest[row[KEY]] = row
    return list(latest.values())


def _write_texts(artifact_uri: str, texts: dict[str, str]) -> None:
    """Each text into the run's artifact folder: a local one directly (as MLflow's local
    repository would copy it), any other through its artifact repository."""
    from mlflow.utils.file_utils import local_file_uri_to_path
    from mlflow.utils.uri import is_local_uri

    if is_local_uri(artifact_uri, is_tracking_or_registry_uri=False):
        folder = Path(local_file_uri_to_path(artifact_uri))
        for name, text in texts.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(artifact_uri)
    with tempfile.TemporaryDirectory() as folder:
        for name, text in texts.items():
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            repository.log_artifact(str(path), str(Path(name).parent) if "/" in name else None)


def _write_with_client(uri: str, experiment_id: str, run: FinishedRun) -> None:
    from mlflow.entities import Metric, Param

    client = _client(uri)
    run.run_id = client.create_run(
        experiment_id, start_time=run.start_ms, tags=run.tags, run_name=run.name
    ).info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in run.params.items()]
    metrics = [Metric(k, float(v), now, int(s)) for k, v, s in run.metrics]
    param_batches = [params[i : i + PARAM_BATCH_LIMIT] for i in range(0, len(params), PARAM_BATCH_LIMIT)]
    metric_batches = [metrics[i : i + METRIC_BATCH_LIMIT] for i in range(0, len(metrics), METRIC_BATCH_LIMIT)]
    for some_params, some_metrics in itertools.zip_longest(param_batches, metric_batches, fillvalue=[]):
        client.log_batch(run.run_id, params=some_params, metrics=some_metrics)
    for name, text in run.texts.items():
        client.log_text(run.run_id, text, name)
    client.set_terminated(run.run_id, run.status)


@functools.cache
def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=connection_uri(uri))
