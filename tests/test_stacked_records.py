"""A stack's records written at once (reglab.tracking.batch, reglab.stacked.records): the runs
of one transaction hold what MLflow's client would store call by call, and exist whole or
not at all."""

from __future__ import annotations

import copy
import math

import pytest
from conftest import store_uri

from reglab.tracking import batch, ensure_experiment
from reglab.tracking.batch import FinishedRun


def _experiment(folder) -> tuple[str, str]:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, ensure_experiment(uri, "records", str(folder / "artifacts"))


def _plain(value: float):
    """A stored value comparable with ``==`` (NaN as a word)."""
    return "nan" if math.isnan(value) else value


def _stored(uri: str) -> dict[str, dict]:
    """Every run of the store by name: status, tags (but MLflow's per-run ones), params,
    latest metrics, each metric's history as (step, value) and its config.yaml."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = {}
    for run in client.search_runs(client.search_experiments()[0].experiment_id, max_results=1000):
        history = {
            key: sorted((m.step, _plain(m.value)) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics
        }
        texts = [a.path for a in client.list_artifacts(run.info.run_id)]
        config = (
            open(client.download_artifacts(run.info.run_id, "config.yaml")).read()
            if "config.yaml" in texts
            else None
        )
        runs[run.info.run_name] = {
            "status": run.info.status,
            "tags": dict(run.data.tags),
            "params": dict(run.data.params),
            "metrics": {key: _plain(value) for key, value in run.data.metrics.items()},
            "history": history,
            "config": config,
            "ended": run.info.end_time is not None,
        }
    return runs


def test_a_run_written_in_one_transaction_stores_what_the_client_stores(tmp_path, monkeypatch):
    """NaN and infinite values, a repeated row, a param over MLflow's length limit and a secret in
    a tag and in the config text: both ways store the same, redacted and truncated."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    runs = [
        FinishedRun(
            name="regularizer=l1,seed=0",
            tags={"reglab.engine": "stacked", "reglab.uri": "http://me:secret@host/x"},
            params={"model.hidden": "[16]", "long": "x" * 7000},
            metrics=[("val/loss", 1.5, 0), ("val/loss", 1.25, 1), ("val/loss", 1.25, 1), ("test/mse", 0.5, 1)]
            + [("fit/odd", math.nan, 0), ("fit/huge", math.inf, 0), ("fit/tiny", -math.inf, 0)],
            texts={"config.yaml": "uri: http://me:secret@host/x\n"},
        ),
        FinishedRun(
            name="regularizer=l1,seed=1",
            tags={"reglab.failure_reason": "diverged"},
            params={"model.hidden": "[16]"},
            metrics=[("train/loss", 2.0, 0)],
            status="FAILED",
        ),
    ]
    (tmp_path / "one").mkdir()
    (tmp_path / "each").mkdir()
    uri, experiment = _experiment(tmp_path / "one")
    batch.write_runs(uri, experiment, copy.deepcopy(runs))
    each_uri, each_experiment = _experiment(tmp_path / "each")
    for run in copy.deepcopy(runs):
        batch._write_with_client(each_uri, each_experiment, run.stored())
    one, each = _stored(uri), _stored(each_uri)
    assert one == each
    first = one["regularizer=l1,seed=0"]
    assert first["tags"]["reglab.uri"] == "http://me:***@host/x"
    assert first["tags"]["reglab.truncated_params"] == "long" and len(first["params"]["long"]) == 6000
    assert first["history"]["val/loss"] == [(0, 1.5), (1, 1.25)]
    assert first["metrics"]["fit/odd"] == "nan" and first["metrics"]["fit/huge"] == 1.7976931348623157e308
    assert first["config"] == "uri: http://me:***@host/x\n"
    assert one["regularizer=l1,seed=1"]["status"] == "FAILED" and one["regularizer=l1,seed=1"]["ended"]


def test_runs_of_a_failed_transaction_do_not_exist(tmp_path, monkeypatch):
    """A write that fails after the first rows (here the latest-metrics rows are refused) leaves
    no run of its batch: never one RUNNING or half written."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri, experiment = _experiment(tmp_path)
    monkeypatch.setattr(batch, "_latest", lambda rows: [(None, 1.0, 0, 0, False, None)])  # no key, no run
    with pytest.raises(Exception, match="(?i)integrity|constraint|null"):
        batch.write_runs(uri, experiment, [FinishedRun("a", {}, {"p": "1"}, [("m", 1.0, 0)])])
    assert _stored(uri) == {}


def test_a_stack_records_each_member_as_mlflows_client_would(output_dir, monkeypatch):
    """A real stack (one member diverges) recorded by the stacked engine, and the same members'
    records written again run by run through MLflow's client: every run's status, params,
    tags, final metrics, histories and config are equal."""
    from reglab.stacked.api import run_stacked

    written = []

    def keep(uri, experiment_id, runs):
        written.extend(copy.deepcopy(runs))
        return write_runs(uri, experiment_id, runs)

    write_runs = batch.write_runs
    monkeypatch.setattr(batch, "write_runs", keep)
    base = ["data=synthetic", "model=linear", "trainer.max_epochs=3", f"paths.output_dir={output_dir}"]
    jobs = [[*base, f"seed={s}", "regularizer=l1"] for s in range(3)] + [[*base, "optimizer.lr=1e12"]]
    results = run_stacked(jobs, verbose=False)
    assert [bool(r.metrics) for r in results] == [True, True, True, False]
    assert all(r.run_id for r in results)
    (output_dir / "each").mkdir()
    each_uri, each_experiment = _experiment(output_dir / "each")
    for run in written:
        batch._write_with_client(each_uri, each_experiment, run.stored())
    one, each = _stored(store_uri(output_dir)), _stored(each_uri)
    assert len(one) == 4 and one == each
    statuses = sorted(run["status"] for run in one.values())
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    finished = next(run for run in one.values() if run["status"] == "FINISHED")
    assert {"test/mse", "fit/best_val_loss", "reglab.config_hash"} <= {
        *finished["metrics"],
        *finished["tags"],
    }
    assert len(finished["history"]["val/loss"]) == 3


@pytest.mark.parametrize(
    "preset", [[], ["experiment=ablation"], ["data=synthetic", "model=linear", "+logger.tags.note='true'"]]
)
def test_a_config_written_section_by_section_is_omegaconfs_yaml(preset):
    from omegaconf import OmegaConf

    from reglab.config import compose
    from reglab.tracking import config_yaml

    resolved = OmegaConf.to_container(compose(preset), resolve=True)
    assert config_yaml(resolved) == OmegaConf.to_yaml(resolved)
    assert config_yaml(resolved) == config_yaml(resolved)  # the second time from the sections written


def test_an_interrupt_while_the_records_thread_starts_comes_once_it_runs(monkeypatch):
    """A Ctrl-C that lands while the records thread is being started is held until the thread
    runs, so the sweep's wait for the records joins a started thread and the records are
    written (a half-started thread made that wait fail)."""
    import signal
    import threading

    from reglab.errors import Interrupted
    from reglab.stacked.records import RecordWriter

    def interrupted(signum, frame):
        raise Interrupted(signum)

    start = threading.Thread.start

    def start_then_signal(thread):
        signal.raise_signal(signal.SIGINT)  # arrives during start()
        start(thread)

    previous = signal.signal(signal.SIGINT, interrupted)
    monkeypatch.setattr(threading.Thread, "start", start_then_signal)
    writer = RecordWriter()
    try:
        with pytest.raises(Interrupted):
            writer.submit(2, lambda: [{"m": 1.0}, {"m": 2.0}])
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    writer.wait()  # joins the thread the interrupt came after
    assert writer._thread is None
