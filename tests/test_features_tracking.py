"""Param values longer than MLflow accepts: truncated, tagged and warned about, never lost
from the run's config.yaml."""

from __future__ import annotations

import logging

from conftest import all_runs, store_uri

import reglab
from reglab import tracking
from reglab.tracking.run import MAX_PARAM_LENGTH, PARAM_BATCH_LIMIT


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_log_params_truncates_tags_and_warns(output_dir, caplog):
    uri = store_uri(output_dir)
    experiment_id = tracking.ensure_experiment(uri, "e", str(output_dir / "art"))
    run = tracking.TrackedRun(uri, experiment_id)
    run.start("r", {})
    long_a, long_b = "a" * (MAX_PARAM_LENGTH + 1), "".join(str(i % 10) for i in range(3 * MAX_PARAM_LENGTH))
    exact = "e" * MAX_PARAM_LENGTH
    many = {f"p{i:03d}": str(i) for i in range(2 * PARAM_BATCH_LIMIT + 5)}  # several log_batch calls
    with caplog.at_level(logging.WARNING, logger="reglab"):
        run.log_params({**many, "long.a": long_a, "exact": exact, "long.b": long_b})
    run.finish()

    (recorded,) = all_runs(uri)
    params = recorded.data.params
    assert params["long.a"] == long_a[:MAX_PARAM_LENGTH]
    assert params["long.b"] == long_b[:MAX_PARAM_LENGTH]
    assert params["exact"] == exact  # at the limit: kept whole, not reported
    assert all(params[k] == v for k, v in many.items())
    assert len(params) == len(many) + 3
    assert recorded.data.tags["reglab.truncated_params"] == "long.a,long.b"
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    for key, value in (("long.a", long_a), ("long.b", long_b)):
        named = [w for w in warnings if key in w]
        assert len(named) == 1 and str(len(value)) in named[0] and str(MAX_PARAM_LENGTH) in named[0], warnings


def test_short_params_are_not_tagged(output_dir, caplog):
    uri = store_uri(output_dir)
    run = tracking.TrackedRun(uri, tracking.ensure_experiment(uri, "e", str(output_dir / "art")))
    run.start("r", {})
    with caplog.at_level(logging.WARNING, logger="reglab"):
        run.log_params({"a": "1", "b": "x" * 300})
    (recorded,) = all_runs(uri)
    assert recorded.data.params == {"a": "1", "b": "x" * 300}
    assert "reglab.truncated_params" not in recorded.data.tags
    assert _warnings(caplog) == []


def test_a_run_with_an_over_long_config_value_is_recorded_truncated(output_dir, caplog):
    note = "".join(chr(ord("a") + i % 26) for i in range(MAX_PARAM_LENGTH + 1000))
    with caplog.at_level(logging.WARNING, logger="reglab"):
        result = reglab.run(
            [f"+note={note}", "trainer.max_epochs=1", "callbacks=none", f"paths.output_dir={output_dir}"]
        )
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.run_id == result.run_id and run.info.status == "FINISHED"
    assert run.data.params["note"] == note[:MAX_PARAM_LENGTH]
    assert run.data.tags["reglab.truncated_params"] == "note"
    assert any("note" in w and str(len(note)) in w for w in _warnings(caplog))
    from mlflow import MlflowClient

    config = MlflowClient(tracking_uri=store_uri(output_dir)).download_artifacts(
        result.run_id, "config.yaml", str(output_dir)
    )
    assert note in open(config).read()  # the full value is kept in the run's config
