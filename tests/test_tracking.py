"""The MLflow store: creation under concurrency, the experiment's kind, URI resolution,
flattening, failure status."""

from __future__ import annotations

import multiprocessing

import pytest
from conftest import all_runs, store_uri

from reglab import tracking


def _ensure(uri: str, artifacts: str, queue) -> None:
    queue.put(tracking.ensure_experiment(uri, "race", artifacts))


@pytest.mark.slow  # four fresh interpreters importing MLflow: about 7 s on 2 cores
def test_concurrent_first_use_of_a_fresh_store_creates_one_experiment(output_dir):
    uri = store_uri(output_dir)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_ensure, args=(uri, str(output_dir / "art"), queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    ids = {queue.get(timeout=5) for _ in workers}
    assert len(ids) == 1


def test_resolve_tracking_uri_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_tracking_uri(None, tmp_path) == "http://127.0.0.1:5000"
    assert tracking.resolve_tracking_uri("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_flatten_config_keeps_nesting_and_lists():
    flat = tracking.flatten_config({"model": {"hidden": [64, 32], "act": "relu"}, "seed": 1, "x": None})
    assert flat == {"model.hidden": "[64, 32]", "model.act": "relu", "seed": "1", "x": "None"}


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_a_run_that_raises_is_never_left_running(output_dir, error, status):
    uri = store_uri(output_dir)
    experiment_id = tracking.ensure_experiment(uri, "e", str(output_dir / "art"))
    run = tracking.TrackedRun(uri, experiment_id)
    run.start("r", {})
    run.fail(error)
    (recorded,) = all_runs(uri)
    assert recorded.info.status == status
    assert recorded.data.tags["reglab.failure_reason"].startswith(type(error).__name__)


def test_the_experiment_is_created_as_model_development_so_the_ui_opens_on_its_runs(output_dir):
    from reglab.tracking.store import EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT

    uri = store_uri(output_dir)
    experiment_id = tracking.ensure_experiment(uri, "reglab", str(output_dir / "art"))
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    # an experiment made before the tag gets it; a kind the user chose is kept
    older = client.create_experiment("older")
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    tracking.ensure_experiment(uri, "older", None)
    tracking.ensure_experiment(uri, "chosen", None)
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == MODEL_DEVELOPMENT
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"
