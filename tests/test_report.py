"""The ablation report (reglab.report, scripts/report.py) on a real sweep in a private store.

One module-scoped sweep (``slow``): regularizer none,l2 x dropout 0,0.3 x seeds 1,2 (8 real
runs of 2 epochs), one FAILED run, an older empty sweep and an experiment without sweeps;
another of optimizer.lr x seeds (4 runs). The rest: synthetic sweeps and stores without training.
"""

from __future__ import annotations

import json
import math
import runpy
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli
from scipy import stats

import reglab
from reglab import report, tracking

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


@pytest.mark.slow
def test_report_writes_tables_and_figures_and_logs_them_to_the_parent(store, written):
    _, uri, parent_id, _ = store
    for name in report.REPORT_FILES:
        assert (written / name).is_file(), name
    for figure in ("heatmap.png", "bars.png", "val_curves.png"):
        assert (written / figure).stat().st_size > 10_000, figure
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    logged = client.list_artifacts(parent_id, "report")
    expected = [*report.REPORT_FILES, "report.html"]
    assert sorted(a.path for a in logged) == sorted(f"report/{name}" for name in expected)
    # the parent run's description (the MLflow UI's run page) is the report's Answer
    from reglab.report.publish import answer_lines

    note = client.get_run(parent_id).data.tags["mlflow.note.content"]
    answer = answer_lines((written / "summary.md").read_text())
    assert answer and all(line in note for line in answer)


@pytest.mark.slow
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


@pytest.mark.slow
def test_paired_differences_are_per_seed_differences_with_a_t_interval(store, written):
    runs = _frame(store[3]).set_index(["regularizer", "dropout", "seed"])["test/acc"]
    table = pd.read_csv(written / "paired_differences.csv")
    assert list(table.config) == ["regularizer=l2, dropout=0", "regularizer=l2, dropout=0.3"]
    for _, row in table.iterrows():
        row.dropout = float(row.config.rsplit("=", 1)[1])
        expected = [runs["l2", row.dropout, seed] - runs["none", row.dropout, seed] for seed in (1, 2)]
        assert json.loads(row.seeds) == [1, 2] and row.n == 2
        np.testing.assert_allclose(json.loads(row.differences), expected, atol=1e-12)
        level = row.ci_level  # the Holm-consistent level: 1 - 0.05 * p / p_Holm
        assert level == pytest.approx(1 - 0.05 * row.p / row.p_holm)
        se = np.std(expected, ddof=1) * math.sqrt(1 / 2 + row.ratio)  # corrected: seeds re-split digits
        mean, half = np.mean(expected), stats.t.ppf(0.5 + level / 2, 1) * se
        assert row.method == "corrected resampled t (Nadeau & Bengio 2003)"
        assert row.mean_difference == pytest.approx(mean, abs=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx((mean - half, mean + half), abs=1e-12)
        assert row.reference == f"regularizer=none, dropout={row.dropout:g}"


@pytest.mark.slow
def test_summary_markdown_lists_the_failed_run(store, written):
    text = (written / "summary.md").read_text()
    assert (
        "| regularizer | dropout | n | failed | test/acc | gap/acc | weights/zero_fraction | fit/epochs |"
        in text
    )
    assert "## Paired differences against the `none` regularizer" in text
    failed_section = text.split("## Failed and killed runs")[1]
    assert "regularizer=l2, dropout=0.3 | 3 | FAILED | RuntimeError: boom: loss exploded" in failed_section
    assert "8 finished and counted, 1 failed/killed" in text


@pytest.mark.slow
def test_console_shows_where_it_wrote_and_the_tables(store, written, capsys):
    out, uri, _, _ = store
    args = ["--tracking-uri", uri, "--output-dir", str(out), "--sweep", "x", "--no-artifacts"]
    assert report.main(args) == 0
    printed = capsys.readouterr().out
    assert f"to {written}" in printed and "| l2 | 0.3 | 2 |" in printed
    assert "| regularizer=l2, dropout=0.3 | regularizer=none, dropout=0.3 | 2 |" in printed


@pytest.mark.slow
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


def test_fewer_than_two_seeds_give_no_test():
    from reglab.report.decisions import test_differences

    assert math.isnan(test_differences([])["mean_difference"])
    one = test_differences([0.5])
    assert one["mean_difference"] == 0.5 and math.isnan(one["p"]) and math.isnan(one["se"])


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


def test_regression_metric_and_a_single_seed_give_no_interval():
    sweep = _sweep_of(
        [
            {"choice.regularizer": "none", "seed": "1", "test/mse": 2.0},
            {"choice.regularizer": "l1", "seed": "1", "test/mse": 1.5},
        ],
        metrics=("test/mse",),
    )
    assert report.detect_metric(sweep.metrics) == "test/mse" and report.lower_is_better("test/mse")
    columns = report.configuration_columns(sweep.params)
    baseline = report.choose_baseline(sweep.params, columns)
    (row,) = report.compare(sweep, "test/mse", columns, baseline).to_dict("records")
    assert row["n"] == 1 and row["mean_difference"] == -0.5 and math.isnan(row["ci_low"])
    assert row["verdict"] == "untested: 1 seed" and not row["in_family"]
    from reglab.report.decisions import verdict

    assert verdict(3, 0.4, 0.01, math.nan, 0.05, None, True) == "better"  # -0.4 in mse: better
    assert verdict(3, -0.4, 0.01, math.nan, 0.05, None, True) == "worse"


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


# --------------------------------------------------------------------------- figures, baseline, axes


@pytest.mark.slow
def test_a_figure_is_one_function_and_one_registration_line(store, tmp_path, request):
    _, uri, _, _ = store

    def plot_seeds(context: report.FigureContext):
        fig = report.new_figure(3, 2)
        fig.subplots().hist(context.sweep.metrics.loc[context.sweep.finished(), context.metric])
        return fig

    report.figure("seeds")(plot_seeds)  # the registration line (as a decorator: @report.figure("seeds"))
    request.addfinalizer(lambda: report.FIGURES.pop("seeds"))
    written = report.write_report(uri, "x", output_dir=tmp_path, log_artifacts=False)
    assert (written.directory / "seeds.png").stat().st_size > 1_000
    assert "seeds.png" in written.files and "seeds.png" in report.REPORT_FILES
    assert "![seeds.png](seeds.png)" in written.markdown


@pytest.mark.slow
def test_baseline_on_dropout_pairs_each_regularizer_with_its_dropout_0_runs(store, tmp_path, capsys):
    out, uri, _, finished = store
    runs = _frame(finished).set_index(["regularizer", "dropout", "seed"])["test/acc"]
    args = ["--tracking-uri", uri, "--output-dir", str(tmp_path), "--no-artifacts", "--baseline", "dropout=0"]
    assert report.main(args) == 0
    table = pd.read_csv(tmp_path / "reports" / "x" / "baseline-dropout=0" / "paired_differences.csv")
    assert list(table.config) == ["regularizer=none, dropout=0.3", "regularizer=l2, dropout=0.3"]
    for _, row in table.iterrows():
        regularizer = row.config.split(",")[0].removeprefix("regularizer=")
        by_hand = [runs[regularizer, 0.3, seed] - runs[regularizer, 0.0, seed] for seed in (1, 2)]
        assert row.reference == f"regularizer={regularizer}, dropout=0"
        np.testing.assert_allclose(json.loads(row.differences), by_hand, atol=1e-12)
        assert row.mean_difference == pytest.approx(np.mean(by_hand), abs=1e-12)
    text = (tmp_path / "reports" / "x" / "baseline-dropout=0" / "summary.md").read_text()
    assert "## Paired differences against `dropout=0`" in text
    assert "| regularizer=l2, dropout=0.3 | regularizer=l2, dropout=0 | 2 |" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--rows", "optimizer.lr"],
            "--rows optimizer.lr: not a param that varies across the finished "
            "runs (varying: regularizer, dropout)",
        ),
        (["--cols", "batchnorm"], "--cols batchnorm: not a param that varies"),
        (["--rows", "dropout", "--cols", "model.dropout"], "--rows dropout and --cols model.dropout name"),
        (
            ["--baseline", "dropout=0.5"],
            "--baseline dropout=0.5: no finished run has dropout=0.5 (values: 0, 0.3)",
        ),
        (["--baseline", "seed=1"], "--baseline seed: not a param that varies"),
    ],
)
def test_an_axis_that_does_not_vary_is_one_line_and_status_2(store, tmp_path, capsys, args, message):
    _, uri, _, _ = store
    assert report.main(["--tracking-uri", uri, "--output-dir", str(tmp_path), "--no-artifacts", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"reglab-report: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_heatmap_axes_by_any_name_of_a_varying_param(store, tmp_path):
    _, uri, _, _ = store
    written = report.write_report(
        uri, "x", output_dir=tmp_path, log_artifacts=False, rows="model.dropout", cols="regularizer"
    )
    assert (written.directory / "heatmap.png").is_file()
    params = written.sweep.params.loc[written.sweep.finished()]
    assert report.heatmap_axes(params, written.columns, "model.dropout", "regularizer") == (
        "dropout",
        "choice.regularizer",
    )


LR_GRID = [(lr, seed) for lr in ("0.001", "0.01") for seed in (1, 2)]


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    """``(output_dir, uri, finished runs)`` of a real sweep ``lr`` over optimizer.lr x seeds."""
    out = tmp_path_factory.mktemp("report_lr") / "outputs"
    uri = f"sqlite:///{out / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        experiment_id = tracking.ensure_experiment(uri, "reglab", str(out / "mlartifacts"))
        parent = tracking.TrackedRun(uri, experiment_id)
        parent.start("sweep-lr", {"reglab.kind": "sweep", "reglab.sweep_id": "lr"})
        for lr, seed in LR_GRID:
            reglab.run(
                [
                    f"optimizer.lr={lr}",
                    f"seed={seed}",
                    "model.hidden=[16]",
                    "trainer.max_epochs=2",
                    f"logger.parent_run_id={parent.run_id}",
                    "logger.sweep_id=lr",
                    f"logger.tracking_uri={uri}",
                    f"paths.output_dir={out}",
                ]
            )
        client = tracking.TrackedRun(uri, experiment_id).client
        finished = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
        yield out, uri, finished


@pytest.mark.slow
def test_a_sweep_over_the_learning_rate_has_it_as_its_axis(lr_sweep):
    out, uri, finished = lr_sweep
    written = report.write_report(uri, output_dir=out, log_artifacts=False)
    assert written.columns == ["optimizer.lr"]
    assert list(written.summary.columns[:3]) == ["optimizer.lr", "config", "n"]
    assert list(written.summary["optimizer.lr"]) == ["0.001", "0.01"]
    assert written.baseline == {"optimizer.lr": "0.001"}  # the first value of the first axis
    value = {
        (r.data.params["optimizer.lr"], int(r.data.params["seed"])): r.data.metrics["test/acc"]
        for r in finished
    }
    (row,) = written.differences.to_dict("records")
    assert row["config"] == "optimizer.lr=0.01" and row["reference"] == "optimizer.lr=0.001"
    np.testing.assert_allclose(
        json.loads(row["differences"]), [value["0.01", s] - value["0.001", s] for s in (1, 2)], atol=1e-12
    )
    assert sorted(written.files) == sorted(report.REPORT_FILES)
    assert "## Paired differences against `optimizer.lr=0.001`" in written.markdown


# --------------------------------------------------------------------------- without training


def _sweep_of(rows: list[dict], metrics: tuple[str, ...] = ("test/acc",)) -> report.Sweep:
    """A synthetic sweep: every run FINISHED, params = the other keys of ``rows``."""
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
    names = [c for c in frame.columns if c not in metrics]
    return report.Sweep(
        "e",
        "0",
        "s",
        "p",
        "sqlite:///unused",
        1,
        info,
        frame[names].astype(str).astype(object),
        frame[list(metrics)].astype(float),
    )


def _three_factor_sweep() -> report.Sweep:
    rows = []
    for i, (regularizer, dropout, batchnorm, seed) in enumerate(
        (r, d, b, s) for r in ("none", "l1") for d in ("0", "0.5") for b in ("False", "True") for s in "12"
    ):
        rows.append(
            {
                "choice.regularizer": regularizer,
                "dropout": dropout,
                "model.dropout": dropout,
                "batchnorm": batchnorm,
                "seed": seed,
                "test/acc": 0.5 + 0.01 * i,
            }
        )
    return _sweep_of(rows)


def test_heatmap_has_a_panel_per_value_of_the_factor_it_does_not_show():
    sweep = _three_factor_sweep()
    columns = report.configuration_columns(sweep.params)
    assert columns == ["choice.regularizer", "batchnorm", "dropout"]
    rows, cols = report.heatmap_axes(sweep.params, columns, "regularizer", "dropout")
    panels = report.heatmap_panels(sweep, "test/acc", rows, cols, ["batchnorm"])
    assert [title for title, _ in panels] == ["batchnorm=False", "batchnorm=True"]
    frame = sweep.params.assign(value=sweep.metrics["test/acc"])
    for title, grid in panels:
        batchnorm = title.split("=")[1]
        for regularizer in ("none", "l1"):
            for dropout in ("0", "0.5"):
                one = frame[
                    (frame["choice.regularizer"] == regularizer)
                    & (frame.dropout == dropout)
                    & (frame.batchnorm == batchnorm)
                ]
                assert len(one) == 2  # the two seeds of one configuration, nothing pooled
                assert grid.loc[regularizer, dropout] == pytest.approx(one.value.mean())
    context = report.FigureContext(sweep, "test/acc", columns, pd.DataFrame(), pd.DataFrame(), {}, rows, cols)
    drawn = report.FIGURES["heatmap"](context)
    assert sum(1 for ax in drawn.axes if ax.images) == 2
    assert "one panel per batchnorm" in drawn._suptitle.get_text()


def test_default_heatmap_axes_are_the_first_two_and_a_single_axis_has_one_column():
    sweep = _three_factor_sweep()
    columns = report.configuration_columns(sweep.params)
    assert report.heatmap_axes(sweep.params, columns, None, None) == ("choice.regularizer", "batchnorm")
    assert report.heatmap_axes(sweep.params, columns, None, "choice.regularizer") == (
        "batchnorm",
        "choice.regularizer",
    )
    assert report.heatmap_axes(sweep.params, ["dropout"], None, None) == ("dropout", None)
    with pytest.raises(
        report.ReportError,
        match=r"^--rows optimizer.lr: not a param that varies .*"
        r"\(varying: regularizer, batchnorm, dropout\)$",
    ):
        report.heatmap_axes(sweep.params, columns, "optimizer.lr", None)


def test_default_baseline_is_no_regularizer_else_the_first_value_of_the_first_axis():
    sweep = _three_factor_sweep()
    params, columns = sweep.params, report.configuration_columns(sweep.params)
    assert report.choose_baseline(params, columns) == {"choice.regularizer": "none"}
    without_none = params[params["choice.regularizer"] == "l1"]
    assert report.choose_baseline(without_none, report.configuration_columns(without_none)) == {
        "batchnorm": "False"
    }
    assert report.choose_baseline(params, columns, ["model.dropout=0.0"]) == {"dropout": "0"}
    assert report.choose_baseline(params, columns, "regularizer=l1") == {"choice.regularizer": "l1"}
    with pytest.raises(report.ReportError, match="expected KEY=VALUE"):
        report.choose_baseline(params, columns, ["dropout"])


def test_a_baseline_that_leaves_an_axis_open_is_an_error():
    rows = [
        {"choice.regularizer": r, "regularizer.strength": s, "seed": seed, "test/acc": 0.5}
        for r, s in (("none", "-"), ("l2", "0.1"), ("l2", "0.01"))
        for seed in "12"
    ]
    sweep = _sweep_of(rows)
    columns = report.configuration_columns(sweep.params)
    assert columns == ["choice.regularizer", "regularizer.strength"]
    default_baseline = report.choose_baseline(sweep.params, columns)
    default = report.compare(sweep, "test/acc", columns, default_baseline)  # none: strength not matched
    assert list(default.reference) == ["regularizer=none, regularizer.strength=-"] * 2
    with pytest.raises(report.ReportError, match="add --baseline for regularizer.strength"):
        report.compare(sweep, "test/acc", columns, {"choice.regularizer": "l2"})
    without_none = sweep.params[sweep.params["choice.regularizer"] != "none"]
    assert report.choose_baseline(without_none, columns) == {  # the default names one configuration
        "choice.regularizer": "l2",
        "regularizer.strength": "0.01",
    }
    pinned = report.choose_baseline(sweep.params, columns, ["regularizer=l2", "regularizer.strength=0.1"])
    pinned_table = report.compare(sweep, "test/acc", columns, pinned)
    pinned_table = pinned_table[pinned_table.paired_row]
    assert list(pinned_table.config) == [
        "regularizer=none, regularizer.strength=-",
        "regularizer=l2, regularizer.strength=0.01",
    ]
    assert set(pinned_table.reference) == {"regularizer=l2, regularizer.strength=0.1"}


def test_zero_fraction_is_that_of_the_tested_weights_else_the_last_epochs():
    metrics = ("test/acc", "best/weights/zero_fraction", "weights/zero_fraction")
    rows = [
        {
            "choice.regularizer": "l1",
            "seed": "1",
            "test/acc": 0.9,
            "best/weights/zero_fraction": 0.2,
            "weights/zero_fraction": 0.5,
        },
        {
            "choice.regularizer": "l1",
            "seed": "2",
            "test/acc": 0.8,
            "best/weights/zero_fraction": math.nan,
            "weights/zero_fraction": 0.4,
        },  # an older run: no best/ metrics
        {
            "choice.regularizer": "none",
            "seed": "1",
            "test/acc": 0.7,
            "best/weights/zero_fraction": 0.0,
            "weights/zero_fraction": 0.1,
        },
    ]
    sweep = _sweep_of(rows, metrics)
    summary = report.summarize(sweep, "test/acc", ["choice.regularizer"]).set_index("config")
    assert summary.loc["regularizer=l1", "weights/zero_fraction_mean"] == pytest.approx((0.2 + 0.4) / 2)
    assert summary.loc["regularizer=l1", "weights/zero_fraction_source"] == "best+last"
    assert summary.loc["regularizer=none", "weights/zero_fraction_mean"] == 0.0
    assert summary.loc["regularizer=none", "weights/zero_fraction_source"] == "best"
    note = report.tables.sparsity_note(sweep)
    assert "for 2 of 3 runs" in note and "the other 1 runs" in note


def test_validation_curves_average_only_the_epochs_every_seed_reached(monkeypatch):
    sweep = _sweep_of([{"choice.regularizer": "l1", "seed": s, "test/acc": 0.5} for s in "12"])
    curves = {"r0": pd.Series([1.0, 0.8, 0.7, 0.6]), "r1": pd.Series([1.2, 1.0])}  # stopped at epoch 1
    monkeypatch.setattr(report.figures, "metric_histories", lambda sweep, runs, key: curves)
    context = report.FigureContext(sweep, "test/acc", [], pd.DataFrame(), pd.DataFrame(), {}, None, None)
    ax = report.FIGURES["val_curves"](context).axes[0]
    (mean,) = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert mean.get_label() == "all runs (n=2), mean to epoch 1"
    np.testing.assert_allclose(mean.get_xdata(), [0, 1])
    np.testing.assert_allclose(mean.get_ydata(), [1.1, 0.9])
    assert len(ax.lines) == 3  # and one thin line per seed, whole


QUOTED = ["a'b", "a\\b", "a\\'b", "a''b", "ab", 'a"b', "a'b\"c", "a\\"]


def test_filter_literals_denote_the_value_itself():
    from mlflow.utils.search_utils import SearchUtils

    for value in QUOTED:
        literal = report.quoted(value)
        if literal is None:
            assert ("'" in value and '"' in value) or value.endswith("\\")
            continue
        condition = f"{report.tag_condition('k', value)} AND tags.`other` = 'x'"
        assert [c["value"] for c in SearchUtils.parse_search_filter(condition)] == [value, "x"], value


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """``(folder, uri, experiment id)`` of a store with an experiment ``reglab`` and no runs
    (runs are logged by hand: no training)."""
    folder = tmp_path_factory.mktemp("hand")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield folder, uri, tracking.ensure_experiment(uri, "reglab", str(folder / "mlartifacts"))


def test_load_sweep_finds_sweep_ids_with_quotes_and_backslashes_exactly(empty_store):
    _, uri, experiment_id = empty_store
    children = {}
    for sweep_id in QUOTED:
        tracking.TrackedRun(uri, experiment_id).start(
            f"sweep {sweep_id}", {"reglab.kind": "sweep", "reglab.sweep_id": sweep_id}
        )
        child = tracking.TrackedRun(uri, experiment_id)  # found by its sweep id tag alone
        children[sweep_id] = child.start(f"run {sweep_id}", {"reglab.sweep_id": sweep_id})
        child.log_params({"seed": "1"})
        child.finish()
    for sweep_id in QUOTED:
        sweep = report.load_sweep(uri, sweep_id=sweep_id)
        assert sweep.sweep_id == sweep_id and list(sweep.runs.index) == [children[sweep_id]], sweep_id


def test_a_sweep_of_one_configuration_has_no_axes_no_heatmap_and_no_differences(empty_store, tmp_path):
    _, uri, experiment_id = empty_store
    parent = tracking.TrackedRun(uri, experiment_id)
    parent.start("sweep-one", {"reglab.kind": "sweep", "reglab.sweep_id": "one"})
    for seed in (1, 2):  # logged by hand: the same config, two seeds
        run = tracking.TrackedRun(uri, experiment_id)
        run.start(f"seed {seed}", {"mlflow.parentRunId": parent.run_id, "reglab.config_hash": f"h{seed}"})
        run.log_params(
            {"choice.regularizer": "l2", "dropout": "0.1", "seed": str(seed), "data.seed": str(seed)}
        )
        run.log_metric_rows([("val/loss", 1.0 / (epoch + seed), epoch) for epoch in range(3)])
        run.log_metrics({"test/acc": 0.5 + seed / 10, "weights/zero_fraction": 0.25})
        run.finish()
    written = report.write_report(uri, "one", output_dir=tmp_path, log_artifacts=False)
    assert written.columns == [] and written.baseline == {} and written.differences.empty
    assert written.files == [
        "summary.csv",
        "summary.md",
        "paired_differences.csv",
        "factor_effects.csv",
        "bars.png",
        "val_curves.png",
    ]
    assert sorted(p.name for p in written.directory.iterdir()) == sorted(written.files)
    (row,) = written.summary.to_dict("records")
    assert row["config"] == "all runs" and row["n"] == 2 and row["test/acc_mean"] == pytest.approx(0.65)
    assert row["weights/zero_fraction_source"] == "last"
    assert "One configuration: no paired differences." in written.markdown
    assert "the other 2 runs (logged before `best/weights/zero_fraction` existed)" in written.markdown


def test_proximal_runs_without_a_single_zero_are_flagged():
    from reglab.report.tables import proximal_note

    rows = [
        {"regularizer.mode": "proximal", "seed": "1", "test/acc": 0.9, "best/weights/zero_fraction": 0.0},
        {"regularizer.mode": "proximal", "seed": "2", "test/acc": 0.9, "best/weights/zero_fraction": 0.3},
        {"regularizer.mode": "penalty", "seed": "1", "test/acc": 0.9, "best/weights/zero_fraction": 0.0},
    ]
    note = proximal_note(_sweep_of(rows, metrics=("test/acc", "best/weights/zero_fraction")))
    assert "1 of the proximal runs ended with no weight exactly 0" in note and "`r0`" in note
    assert "`r1`" not in note and "`r2`" not in note
    assert proximal_note(_sweep_of(rows[1:], metrics=("test/acc", "best/weights/zero_fraction"))) == ""


def test_unequal_training_budgets_are_warned_about():
    from reglab.report.tables import budget_note

    summary = pd.DataFrame({"config": ["none", "l2"], "fit/epochs_mean": [20.0, 45.0]})
    note = budget_note(summary)
    assert "`l2` trained 45 epochs on average, `none` 20 (2.2x" in note and "callbacks=fixed_budget" in note
    assert budget_note(summary.assign(**{"fit/epochs_mean": [20.0, 40.0]})) == ""  # 2x exactly: no warning


def test_a_fixed_budget_trains_every_epoch_and_tests_the_best_one():
    result = reglab.run(
        ["callbacks=fixed_budget", "trainer.max_epochs=6", "model.hidden=[16]", "logger=none"]
    )
    assert result.metrics["fit/epochs"] == 6 and result.metrics["fit/stopped_early"] == 0
    best = int(result.metrics["fit/best_epoch"])
    assert (
        result.metrics["fit/best_val_loss"]
        == min(result.history["val/loss"])
        == result.history["val/loss"][best]
    )


def test_every_factor_gets_a_paired_interval_and_holm_adjusted_p_values():
    from scipy import stats

    from reglab.report.decisions import holm

    acc = {  # (regularizer, dropout) -> test/acc for seeds 1..4
        ("none", "0.0"): [0.80, 0.82, 0.81, 0.79],
        ("l2", "0.0"): [0.84, 0.83, 0.86, 0.82],
        ("none", "0.3"): [0.83, 0.85, 0.82, 0.84],
        ("l2", "0.3"): [0.85, 0.86, 0.84, 0.87],
    }
    rows = [
        {"choice.regularizer": r, "dropout": d, "seed": str(s + 1), "test/acc": v}
        for (r, d), values in acc.items()
        for s, v in enumerate(values)
    ]
    sweep = _sweep_of(rows)
    columns = ["choice.regularizer", "dropout"]
    effects = report.compare(sweep, "test/acc", columns, report.choose_baseline(sweep.params, columns))
    effects = effects[effects.factor_row].reset_index(drop=True)
    assert len(effects) == 4  # each factor's one non-baseline level, in each context of the other
    row = effects[(effects.factor == "regularizer") & (effects.context == "dropout=0.0")].iloc[0]
    d = np.array(acc[("l2", "0.0")]) - np.array(acc[("none", "0.0")])
    half = stats.t.ppf(0.5 + row.ci_level / 2, 3) * d.std(ddof=1) / 2  # no data/resplit: paired t
    assert row.level == "l2" and row.baseline == "none" and row.n == 4 and row.method == "paired t"
    assert row.mean_difference == pytest.approx(d.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row.p == pytest.approx(stats.ttest_rel(acc[("l2", "0.0")], acc[("none", "0.0")]).pvalue)
    # Holm by hand: sorted p-values times 4, 3, 2, 1, kept monotone, capped at 1
    p = effects["p"].to_numpy()
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, p[order] * np.array([4, 3, 2, 1])))
    assert effects["p_holm"].to_numpy()[order] == pytest.approx(expected)
    assert holm([0.01, np.nan, 0.04]).tolist()[::2] == pytest.approx([0.02, 0.04])


def test_tuned_selection_picks_per_configuration_and_seed_on_validation_never_on_test():
    from reglab.report.tuning import compared_columns, select_tuned

    rows = []
    for regularizer in ("none", "l2"):
        for strength, val_loss, test_acc in (("0.001", 0.30, 0.95), ("0.01", 0.20, 0.80)):
            for seed in ("1", "2"):
                worse = 0.0 if (regularizer, seed) != ("l2", "2") else 0.2  # l2 seed 2 prefers 0.001
                loss = val_loss + (worse if strength == "0.01" else 0.0)
                rows.append(
                    {
                        "choice.regularizer": regularizer,
                        "regularizer.strength": strength,
                        "seed": seed,
                        "fit/best_val_loss": loss,
                        "test/acc": test_acc,
                    }
                )
    sweep = _sweep_of(rows, metrics=("fit/best_val_loss", "test/acc"))
    assert compared_columns(sweep, ["regularizer.strength"]) == ["choice.regularizer"]
    selection = select_tuned(sweep, ["regularizer.strength"], "test/acc")
    picked = {
        (r["choice.regularizer"], r["seed"]): r["regularizer.strength"] for _, r in selection.iterrows()
    }
    # the lowest validation loss wins even where the test accuracy is worse there (0.80 < 0.95)
    assert picked == {("none", "1"): "0.01", ("none", "2"): "0.01", ("l2", "1"): "0.01", ("l2", "2"): "0.001"}
    assert selection.set_index(["choice.regularizer", "seed"]).loc[("l2", "2"), "test/acc"] == 0.95
    assert set(selection["candidates"]) == {2}


@pytest.mark.slow
def test_a_study_declaring_its_tuned_knob_gets_the_tuned_headline(output_dir):
    done = run_cli(
        [
            "-m",
            "regularizer=none,l2",
            "regularizer.strength=1e-4,1e-2",
            "seed=0,1",
            "study.tuned=[regularizer.strength]",
            "trainer.max_epochs=3",
            "model.hidden=[8]",
        ],
        output_dir,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (folder,) = (output_dir / "reports").iterdir()
    text = (folder / "summary.md").read_text()
    assert text.index("## Each configuration at its tuned `regularizer.strength`") < text.index(
        "## Configurations"
    )
    assert "never ran" not in text  # the runs not selected did run
    selection = pd.read_csv(folder / "tuned_selection.csv")
    assert len(selection) == 4  # 2 regularizers x 2 seeds; none ignores the strength: 1 candidate
    assert dict(zip(selection["choice.regularizer"], selection["candidates"], strict=True)) == {
        "none": 1,
        "l2": 2,
    }
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["regularizer"]) == ["none", "l2"]  # strength is tuned, not an axis


def test_the_report_states_the_answer_first():
    from reglab.report.tables import answer_section

    effects = pd.DataFrame(
        {
            "factor": ["regularizer", "regularizer"],
            "level": ["l2", "l2"],
            "baseline": ["none", "none"],
            "context": ["dropout=0", "dropout=0.3"],
            "mean_difference": [0.02, -0.001],
            "ci_level": [0.975, 0.95],
            "ci_low": [0.01, -0.01],
            "ci_high": [0.03, 0.008],
            "p_holm": [0.01, 0.9],
            "verdict": ["better", "inconclusive"],
            "verdict_worst_case": ["", ""],
            "in_family": [True, True],
            "method": ["paired t", "paired t"],
        }
    )
    lines = answer_section(effects, "test/acc", ["forest.png"])
    assert lines[0] == "## Answer"
    assert lines[2].startswith(
        "- regularizer=l2 vs none: better test/acc in 1, worse in 0, inconclusive in 1 of 2 contexts"
    )
    assert "largest difference 0.02 [+0.01, +0.03] (97.5 %) (dropout=0): better" in lines[2]
    assert "`forest.png`" in lines[-2] and "`forest.png`" not in answer_section(effects, "test/acc", [])[-2]


def test_a_selection_at_the_grids_end_is_flagged_unless_the_configuration_ignores_the_knob():
    from reglab.report.tuning import edge_warnings

    selection = pd.DataFrame(
        {
            "choice.regularizer": ["l1"] * 3 + ["l2"] * 3 + ["none"] * 3,
            "seed": [0, 1, 2] * 3,
            "regularizer.strength": [1e-5, 1e-5, 1e-4, 1e-4, 1e-3, 1e-4, 1e-5, 1e-5, 1e-5],
            "ignored": [""] * 6 + ["regularizer.strength"] * 3,  # none ignores its strength
        }
    )
    grid = {"regularizer.strength": [1e-5, 1e-4, 1e-3, 1e-2]}
    grids = {"regularizer=l1": grid, "regularizer=l2": grid, "regularizer=none": grid}
    lines = edge_warnings(selection, ["regularizer.strength"], ["choice.regularizer"], grids)
    assert len(lines) == 2 and lines[-1] == ""
    assert (
        "regularizer=l1" in lines[0]
        and "smallest regularizer.strength tried (1e-05) for 2 of 3 seeds" in lines[0]
    )
    # a grid is the configuration's own: l2 tried only 1e-4..1e-2 here, so 1e-4 is its smallest
    grids["regularizer=l2"] = {"regularizer.strength": [1e-4, 1e-3, 1e-2]}
    lines = edge_warnings(selection, ["regularizer.strength"], ["choice.regularizer"], grids)
    assert any("regularizer=l2" in line and "(0.0001) for 2 of 3" in line for line in lines)
