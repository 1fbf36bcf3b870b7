"""The ablation report (reglab.report, scripts/report.py) on a real sweep in a private store.

One module-scoped sweep: regularizer none,l2 x dropout 0,0.3 x seeds 1,2 (8 real runs of
2 epochs), one FAILED run, an older empty sweep and an experiment without sweeps.
"""

from __future__ import annotations

import json
import math
import runpy
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from scipy import stats

import reglab
from reglab import report, tracking

pytestmark = pytest.mark.slow

GRID = [
    (regularizer, dropout, seed)
    for regularizer in ("none", "l2")
    for dropout in ("0", "0.3")
    for seed in (1, 2)
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """``(output_dir, uri, parent_run_id, finished runs)`` of a real sweep ``x``."""
    out = tmp_path_factory.mktemp("report") / "outputs"
    uri = f"sqlite:///{out / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        experiment_id = tracking.ensure_experiment(uri, "reglab", str(out / "mlartifacts"))
        tracking.ensure_experiment(uri, "empty", str(out / "mlartifacts"))
        tracking.TrackedRun(uri, experiment_id).start(
            "sweep-old", {"reglab.kind": "sweep", "reglab.sweep_id": "old"}
        )
        parent = tracking.TrackedRun(uri, experiment_id)
        parent.start("sweep-x", {"reglab.kind": "sweep", "reglab.sweep_id": "x"})
        for regularizer, dropout, seed in GRID:
            reglab.run(
                [
                    f"regularizer={regularizer}",
                    f"dropout={dropout}",
                    f"seed={seed}",
                    "model.hidden=[32]",
                    "trainer.max_epochs=2",
                    f"logger.parent_run_id={parent.run_id}",
                    "logger.sweep_id=x",
                    f"logger.tracking_uri={uri}",
                    f"paths.output_dir={out}",
                ]
            )
        client = tracking.TrackedRun(uri, experiment_id).client
        finished = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
        assert len(finished) == len(GRID)
        failed = tracking.TrackedRun(uri, experiment_id)
        failed.start(
            "failed",
            {"mlflow.parentRunId": parent.run_id, "reglab.sweep_id": "x", "reglab.config_hash": "f" * 16},
        )
        failed.log_params(
            {**finished[0].data.params, "choice.regularizer": "l2", "dropout": "0.3", "seed": "3"}
        )
        failed.log_metrics({"test/acc": 0.0})  # must not enter any number
        failed.fail(RuntimeError("boom: loss exploded"))
        yield out, uri, parent.run_id, finished


@pytest.fixture(scope="module")
def written(store):
    """The report of the latest sweep, written by scripts/report.py (as a user runs it)."""
    out, uri, _, _ = store
    argv = sys.argv
    sys.argv = ["scripts/report.py", "--tracking-uri", uri, "--output-dir", str(out)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(ROOT / "scripts" / "report.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    return out / "reports" / "x"


def _frame(finished) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "regularizer": r.data.params["choice.regularizer"],
                "dropout": float(r.data.params["dropout"]),
                "seed": int(r.data.params["seed"]),
                **r.data.metrics,
            }
            for r in finished
        ]
    )


def test_report_writes_tables_and_figures_and_logs_them_to_the_parent(store, written):
    _, uri, parent_id, _ = store
    for name in report.REPORT_FILES:
        assert (written / name).is_file(), name
    for figure in ("heatmap.png", "bars.png", "val_curves.png"):
        assert (written / figure).stat().st_size > 10_000, figure
    from mlflow import MlflowClient

    logged = MlflowClient(tracking_uri=uri).list_artifacts(parent_id, "report")
    assert sorted(a.path for a in logged) == sorted(f"report/{name}" for name in report.REPORT_FILES)


def test_summary_is_mean_and_std_over_seeds_of_the_finished_runs(store, written):
    runs = _frame(store[3])
    summary = pd.read_csv(written / "summary.csv")
    assert list(summary.columns[:4]) == ["regularizer", "dropout", "config", "n"]  # model.dropout, seed: not
    assert list(zip(summary.regularizer, summary.dropout, strict=True)) == [
        ("none", 0),
        ("none", 0.3),
        ("l2", 0),
        ("l2", 0.3),
    ]
    for _, row in summary.iterrows():
        group = runs[(runs.regularizer == row.regularizer) & (runs.dropout == row.dropout)]
        assert row.n == 2 == len(group)  # the FAILED l2 / 0.3 run is not counted
        for quantity in ("test/acc", "gap/acc", "weights/zero_fraction", "fit/epochs"):
            assert row[f"{quantity}_mean"] == pytest.approx(group[quantity].mean(), abs=1e-12)
            assert row[f"{quantity}_std"] == pytest.approx(group[quantity].std(ddof=1), abs=1e-12)
    assert (summary["fit/epochs_mean"] == 2).all()


def test_paired_differences_are_per_seed_differences_with_a_t_interval(store, written):
    runs = _frame(store[3]).set_index(["regularizer", "dropout", "seed"])["test/acc"]
    table = pd.read_csv(written / "paired_differences.csv")
    assert list(zip(table.regularizer, table.dropout, strict=True)) == [("l2", 0), ("l2", 0.3)]
    for _, row in table.iterrows():
        expected = [runs["l2", row.dropout, seed] - runs["none", row.dropout, seed] for seed in (1, 2)]
        assert json.loads(row.seeds) == [1, 2] and row.n == 2
        np.testing.assert_allclose(json.loads(row.differences), expected, atol=1e-12)
        mean, half = np.mean(expected), stats.t.ppf(0.975, 1) * np.std(expected, ddof=1) / math.sqrt(2)
        assert row.mean_difference == pytest.approx(mean, abs=1e-12)
        assert (row.ci95_low, row.ci95_high) == pytest.approx((mean - half, mean + half), abs=1e-12)
        assert row.baseline == f"regularizer=none, dropout={row.dropout:g}"


def test_summary_markdown_lists_the_failed_run(store, written):
    text = (written / "summary.md").read_text()
    assert "| regularizer | dropout | n | test/acc | gap/acc | weights/zero_fraction | fit/epochs |" in text
    assert "## Paired differences against the `none` regularizer" in text
    failed_section = text.split("## Failed and killed runs")[1]
    assert "regularizer=l2, dropout=0.3 | 3 | FAILED | RuntimeError: boom: loss exploded" in failed_section
    assert "8 finished and counted, 1 failed/killed" in text


def test_console_shows_where_it_wrote_and_the_tables(store, written, capsys):
    out, uri, _, _ = store
    args = ["--tracking-uri", uri, "--output-dir", str(out), "--sweep", "x", "--no-artifacts"]
    assert report.main(args) == 0
    printed = capsys.readouterr().out
    assert f"to {written}" in printed and "| l2 | 0.3 | 2 |" in printed
    assert "| regularizer=l2, dropout=0.3 | regularizer=none, dropout=0.3 | 2 |" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "no experiment 'nope' in sqlite:///"),
        (["--experiment", "empty"], "experiment 'empty' has no sweeps"),
        (["--sweep", "nope"], "no sweep 'nope' in experiment 'reglab'; available (newest first): x, old"),
        (["--sweep", "old"], "sweep 'old' of experiment 'reglab' has no runs yet"),
        (["--metric", "test/nope"], "no metric 'test/nope' in the finished runs of sweep 'x'"),
    ],
)
def test_what_is_not_in_the_store_is_one_line_and_status_2(store, capsys, args, message):
    out, uri, _, _ = store
    assert report.main(["--tracking-uri", uri, "--output-dir", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"reglab-report: error: {message}") and err.count("\n") == 1


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert report.main(["--output-dir", str(tmp_path)]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_t_interval_needs_two_values():
    assert all(math.isnan(v) for v in report.t_interval([]))
    mean, std, low, high = report.t_interval([0.5])
    assert mean == 0.5 and math.isnan(std) and math.isnan(low) and math.isnan(high)
    mean, _, low, high = report.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))


def test_configuration_drops_seed_bookkeeping_and_params_that_follow_others():
    params = pd.DataFrame(
        {
            "choice.regularizer": ["none", "l1", "l1", "none"],
            "regularizer.strength": ["-", "0.1", "0.1", "-"],
            "regularizer._target_": ["N", "L1", "L1", "N"],
            "dropout": ["0", "0", "0.5", "0.5"],
            "model.dropout": ["0", "0", "0.5", "0.5"],
            "seed": ["1", "2", "3", "4"],
            "data.seed": ["1", "2", "3", "4"],
            "paths.output_dir": ["a", "b", "c", "d"],
            "model.hidden": ["[8]"] * 4,
        }
    )
    assert report.configuration_columns(params) == ["choice.regularizer", "dropout"]


def _synthetic_sweep(rows: list[dict]) -> report.Sweep:
    frame = pd.DataFrame(rows, index=pd.Index([f"r{i}" for i in range(len(rows))], name="run_id"))
    info = pd.DataFrame(
        {
            "status": "FINISHED",
            "start_time": range(len(rows)),
            "failure_reason": "",
            "config_hash": [f"h{i}" for i in range(len(rows))],
            "run_name": "",
        },
        index=frame.index,
    )
    params = frame[["choice.regularizer", "seed"]].astype(object)
    return report.Sweep("e", "0", "s", "p", "sqlite:///unused", 1, info, params, frame[["test/mse"]])


def test_regression_metric_and_a_single_seed_give_no_interval():
    sweep = _synthetic_sweep(
        [
            {"choice.regularizer": "none", "seed": "1", "test/mse": 2.0},
            {"choice.regularizer": "l1", "seed": "1", "test/mse": 1.5},
        ]
    )
    assert report.detect_metric(sweep.metrics) == "test/mse" and report.lower_is_better("test/mse")
    columns = report.configuration_columns(sweep.params)
    (row,) = report.paired_differences(sweep, "test/mse", columns).to_dict("records")
    assert row["n"] == 1 and row["mean_difference"] == -0.5 and math.isnan(row["ci95_low"])
    assert row["verdict"] == "n=1: no interval"
    assert report.verdict(3, -0.4, -0.1, "test/mse") == "better"
    assert report.verdict(3, -0.4, -0.1, "test/acc") == "worse"


def _parent(start: int, signature: str, overrides: str):
    from types import SimpleNamespace

    tags = {"reglab.sweep_signature": signature, "reglab.overrides": overrides}
    return SimpleNamespace(info=SimpleNamespace(start_time=start), data=SimpleNamespace(tags=tags))


def test_a_resumed_sweep_reads_the_launches_it_resumed():
    first, other = _parent(1, "s", "seed=1,2"), _parent(2, "t", "seed=1,2")
    second, third = _parent(3, "s", "seed=1,2 +resume=true"), _parent(4, "s", "seed=1,2 +resume=true")
    again = _parent(5, "s", "seed=1,2")
    parents = [again, third, other, second, first]  # newest first, as the store returns them
    assert report.store.sweep_launches(parents, third) == [third, second, first]
    assert report.store.sweep_launches(parents, again) == [again]
    assert report.store.sweep_launches(parents, first) == [first]
