"""The report's one decision rule, checked by hand and through ``write_report`` on sweeps logged
by hand into a real SQLite store (no training): every output states the same verdict for the
same comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reglab import report, tracking
from reglab.report import decisions
from reglab.report.directions import lower_is_better


@pytest.fixture
def store(tmp_path, monkeypatch):
    """``(uri, experiment id, output dir)`` of an empty store."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, tracking.ensure_experiment(uri, "reglab", str(tmp_path / "mlartifacts")), tmp_path


def log_sweep(store, sweep_id: str, runs: list[dict]) -> str:
    """A sweep parent and one child per ``runs`` entry: ``params`` (strings), ``metrics`` and
    ``status`` (FINISHED unless given); returns the parent run id."""
    uri, experiment_id, _ = store
    parent = tracking.TrackedRun(uri, experiment_id)
    parent.start(f"sweep-{sweep_id}", {"reglab.kind": "sweep", "reglab.sweep_id": sweep_id})
    for i, run in enumerate(runs):
        child = tracking.TrackedRun(uri, experiment_id)
        child.start(f"run {i}", {"mlflow.parentRunId": parent.run_id, "reglab.config_hash": f"{sweep_id}{i}"})
        child.log_params(run["params"])
        child.log_metrics(run.get("metrics", {}))
        if run.get("status") == "FAILED":
            child.fail(RuntimeError("diverged"))
        else:
            child.finish()
    parent.finish()
    return parent.run_id


def write(store, sweep_id: str, **options) -> report.Report:
    uri, _, out = store
    return report.write_report(uri, sweep_id, output_dir=out, log_artifacts=False, **options)


# --------------------------------------------------------------------------- the rule by hand


def test_corrected_resampled_t_matches_a_hand_computation():
    d = np.array([0.02, 0.01, 0.03, 0.015, 0.025])
    ratio = 300 / 1200
    row = decisions.test_differences(d, ratio)
    se = d.std(ddof=1) * math.sqrt(1 / 5 + ratio)
    assert row["se"] == pytest.approx(se)
    assert row["p"] == pytest.approx(2 * stats.t.sf(d.mean() / se, 4))
    # with independent seeds it is scipy's paired t
    assert decisions.test_differences(d)["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)


def test_an_exact_difference_with_zero_spread_is_tested_and_in_the_family():
    row = decisions.test_differences([0.01, 0.01, 0.01])
    assert row["sd"] == 0 and row["p"] == 0.0
    assert decisions.test_differences([0.0, 0.0])["p"] == 1.0
    table = pd.DataFrame([{**row, "ratio": 0.0, "in_family": True}])
    decided = decisions.decide(table, "test/acc")
    assert decided.loc[0, "p_holm"] == 0.0 and decided.loc[0, "verdict"] == "better"
    assert decided.loc[0, "ci_low"] == decided.loc[0, "ci_high"] == pytest.approx(0.01)


def test_holm_consistent_intervals_exclude_zero_exactly_when_the_adjusted_p_is_below_alpha():
    rng = np.random.default_rng(0)
    rows = [decisions.test_differences(rng.normal(mu, 0.01, 5)) for mu in np.linspace(0, 0.02, 12)]
    table = pd.DataFrame(rows).assign(ratio=0.0, in_family=True)
    decided = decisions.decide(table, "test/acc")
    excludes = (decided["ci_low"] > 0) | (decided["ci_high"] < 0)
    assert ((decided["p_holm"] < 0.05) == excludes).all()
    # the family makes a difference here: some unadjusted 95 % intervals exclude 0 that Holm does not
    assert ((decided["p"] < 0.05) & ~(decided["p_holm"] < 0.05)).any()
    assert (decided["verdict"].map(decisions.is_clear) != 0).eq(excludes).all()


def test_equivalence_by_two_one_sided_tests_and_prospective_seeds_needed():
    d = np.array([0.001, -0.002, 0.0015, 0.0, -0.0005, 0.001])
    row = decisions.test_differences(d, 0.0, margin=0.01)
    se = d.std(ddof=1) / math.sqrt(6)
    expected = max(stats.t.sf((d.mean() + 0.01) / se, 5), stats.t.cdf((d.mean() - 0.01) / se, 5))
    assert row["p_equivalence"] == pytest.approx(expected)
    decided = decisions.decide(pd.DataFrame([row]).assign(ratio=0.0, in_family=True), "test/acc", margin=0.01)
    assert decided.loc[0, "verdict"] == "equivalent within ±0.01"
    # seeds needed by hand: the smallest n whose noncentral-t power at alpha / K reaches 0.8
    sd, ratio, margin, alpha = 0.02, 0.05, 0.02, 0.05 / 3

    def power(n):
        critical = stats.t.ppf(1 - alpha / 2, n - 1)
        shift = margin / (sd * math.sqrt(1 / n + ratio))
        return stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift)

    needed = decisions.seeds_needed(sd, ratio, margin, alpha)
    assert 2 < needed < math.inf and power(needed) >= 0.8 > power(needed - 1)
    # a margin below the test-set noise cannot be reached by seeds alone
    assert decisions.seeds_needed(0.05, 0.25, 0.01, alpha) == math.inf


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("test/support_fpr", True),
        ("test/ece", True),
        ("test/mse", True),
        ("test/mae", True),
        ("test/loss", True),
        ("test/model_error", True),
        ("test/acc", False),
        ("test/support_tpr", False),
        ("test/r2", False),
    ],
)
def test_metric_directions_come_from_one_table(metric, lower):
    assert lower_is_better(metric) is lower


# --------------------------------------------------------------------------- through write_report


def _regularizer_runs(effects: dict[str, list[float]], seeds=range(5), extra=None) -> list[dict]:
    """Runs of ``regularizer`` x seed with test/acc = 0.8 + effect[seed] (none: 0.8 + noise)."""
    runs = []
    for regularizer, values in effects.items():
        for seed, value in zip(seeds, values, strict=True):
            runs.append(
                {
                    "params": {"choice.regularizer": regularizer, "seed": str(seed), **(extra or {})},
                    "metrics": {"test/acc": value, "fit/best_val_loss": 1 - value},
                }
            )
    return runs


def test_every_output_states_the_same_verdict_when_adjusted_and_unadjusted_disagree(store):
    base = [0.80, 0.81, 0.79, 0.80, 0.82]
    bump = [0.012, 0.004, 0.010, 0.002, 0.008]  # p ~ 0.02 alone, not below 0.05 after Holm over 6
    effects = {"none": base}
    for i, name in enumerate(("l1", "l2", "elastic", "group_lasso", "max_norm", "l1_prox")):
        effects[name] = [b + x * (1 if i == 0 else 0.1 * i) for b, x in zip(base, bump, strict=True)]
    log_sweep(store, "disagree", _regularizer_runs(effects))
    written = write(store, "disagree")
    table = written.comparisons
    l1 = table[table["config"] == "regularizer=l1"].iloc[0]
    assert l1["p"] < 0.05 <= l1["p_holm"]  # an unadjusted t would have called it
    assert l1["verdict"] == "inconclusive" and l1["ci_low"] < 0 < l1["ci_high"]
    # the paired table, the factor table and the Answer say the same of every comparison
    paired = pd.read_csv(written.directory / "paired_differences.csv").set_index("config")
    factor = pd.read_csv(written.directory / "factor_effects.csv").set_index("config")
    for row in table.itertuples():
        assert paired.loc[row.config, "verdict"] == factor.loc[row.config, "verdict"] == row.verdict
        assert paired.loc[row.config, "ci_low"] == pytest.approx(row.ci_low)
        answer = next(
            line for line in written.markdown.splitlines() if line.startswith(f"- regularizer={row.level} ")
        )
        assert answer.endswith(f": {row.verdict}")
        clear = decisions.is_clear(row.verdict)
        assert f"better test/acc in {int(clear > 0)}, worse in {int(clear < 0)}" in answer
    # the forest plot draws the same intervals, coloured by the same verdicts
    from reglab.report.figures import VERDICT_COLORS, plot_forest

    figure = plot_forest(_context(written))
    drawn = figure.axes[0].containers
    assert len(drawn) == len(table)
    for container, row in zip(drawn, table.itertuples(), strict=True):
        (segments,) = container.lines[2]
        (low, _), (high, _) = segments.get_segments()[0]
        assert (low, high) == pytest.approx((row.ci_low, row.ci_high))
        assert container.lines[0].get_color() == VERDICT_COLORS[decisions.is_clear(row.verdict)]


def _context(written: report.Report):
    from reglab.report.figures import FigureContext

    return FigureContext(
        written.sweep,
        written.metric,
        written.columns,
        written.summary,
        written.differences,
        written.baseline,
        None,
        None,
        written.effects,
    )


def test_seeds_that_resplit_one_data_set_get_the_corrected_interval_and_the_report_names_it(store):
    runs = _regularizer_runs({"none": [0.8, 0.81, 0.79, 0.8], "l2": [0.82, 0.83, 0.8, 0.815]}, range(4))
    for run in runs:
        run["metrics"] |= {"data/resplit": 1.0, "data/n_train": 1200.0, "data/n_test": 300.0}
    log_sweep(store, "resplit", runs)
    written = write(store, "resplit")
    (row,) = written.comparisons.itertuples()
    d = np.array(json.loads(row.differences))
    assert row.method == decisions.CORRECTED_T and row.se == pytest.approx(
        d.std(ddof=1) * math.sqrt(1 / 4 + 0.25)
    )
    assert "corrected resampled t (Nadeau & Bengio 2003)" in written.markdown
    assert "n_test/n_train = 0.25" in written.markdown


def test_baseline_is_honoured_by_every_table_and_elastic_with_varying_l1_ratio_is_still_compared(store):
    runs = []
    for seed in range(3):
        for regularizer, ratio, dropout, acc in (
            ("none", "-", "0.0", 0.80),
            ("none", "-", "0.3", 0.81),
            ("elastic", "0.2", "0.0", 0.82),
            ("elastic", "0.8", "0.0", 0.83),
            ("elastic", "0.2", "0.3", 0.84),
            ("elastic", "0.8", "0.3", 0.85),
        ):
            params = {"choice.regularizer": regularizer, "dropout": dropout, "seed": str(seed)}
            if ratio != "-":
                params["regularizer.l1_ratio"] = ratio
            runs.append({"params": params, "metrics": {"test/acc": acc + 0.001 * seed * (ratio == "0.8")}})
    log_sweep(store, "ratio", runs)
    default = write(store, "ratio")
    regularizer_rows = default.effects[default.effects["factor"] == "regularizer"]
    assert set(regularizer_rows["level"]) == {"elastic, l1_ratio=0.2", "elastic, l1_ratio=0.8"}
    assert set(regularizer_rows["baseline"]) == {"none"} and regularizer_rows["in_family"].all()
    dropout_default = default.effects[default.effects["factor"] == "dropout"]
    assert set(dropout_default["baseline"]) == {"0.0"}
    chosen = write(store, "ratio", baseline=["dropout=0.3"])
    dropout_rows = chosen.effects[chosen.effects["factor"] == "dropout"]
    assert set(dropout_rows["baseline"]) == {"0.3"} and set(dropout_rows["level"]) == {"0.0"}
    assert "- dropout=0.0 vs 0.3:" in chosen.markdown and "- dropout=0.3 vs 0.0" not in chosen.markdown
    # its own folder: the default report is not overwritten
    assert chosen.directory.parent == default.directory and (default.directory / "summary.md").exists()


def test_nuisance_factors_are_context_not_comparisons(store):
    runs = []
    for seed in range(3):
        for regularizer in ("none", "l2"):
            for model, acc in (("mlp", 0.8), ("cnn1d", 0.9)):
                runs.append(
                    {
                        "params": {
                            "choice.regularizer": regularizer,
                            "choice.model": model,
                            "seed": str(seed),
                        },
                        "metrics": {"test/acc": acc + 0.01 * (regularizer == "l2") + 0.001 * seed},
                    }
                )
    log_sweep(store, "nuisance", runs)
    written = write(store, "nuisance")
    family = written.comparisons[written.comparisons["in_family"]]
    assert set(family["factor"]) == {"regularizer"} and len(family) == 2  # one per model
    assert not any(line.startswith("- model=") for line in written.markdown.splitlines())
    promoted = write(store, "nuisance", compare_keys=["model"])
    assert "model" in set(promoted.comparisons.loc[promoted.comparisons["in_family"], "factor"])


def test_one_seed_gives_no_verdict_no_forest_and_no_bold_tie(store):
    runs = _regularizer_runs({"none": [0.8], "l1": [0.8], "l2": [0.8]}, range(1))
    log_sweep(store, "one-seed", runs)
    written = write(store, "one-seed")
    assert set(written.comparisons["verdict"]) == {decisions.UNTESTED}
    assert "forest.png" not in written.files and "forest.png" not in written.markdown
    assert "One seed per configuration: no interval and no verdict" in written.markdown
    assert "**" not in written.markdown.split("## Configurations")[1].split("##")[0]


def test_the_grids_end_is_read_from_the_values_tried_per_configuration(store):
    strengths = ["1e-4", "1e-3", "1e-2", "1e-1"]
    best = {"l1": "1e-4", "l2": "1e-2"}  # l1 at the smallest tried on every seed; l2 in the middle
    runs = []
    for seed in range(5):
        for regularizer in ("none", "l1", "l2"):
            for strength in strengths:
                chosen = regularizer == "none" or strength == best[regularizer]
                loss = 0.5 if chosen else 0.6
                runs.append(
                    {
                        "params": {
                            "choice.regularizer": regularizer,
                            "regularizer.strength": strength,
                            "regularizer._target_": "reglab.regularizers.NoPenalty"
                            if regularizer == "none"
                            else f"reglab.regularizers.{regularizer}",
                            "study.tuned": '["regularizer.strength"]',
                            "seed": str(seed),
                        },
                        "metrics": {"test/acc": 0.8 + 0.01 * seed, "fit/best_val_loss": loss + 0.001 * seed},
                    }
                )
    log_sweep(store, "edge", runs)
    written = write(store, "edge")
    flagged = [line for line in written.markdown.splitlines() if "At the grid's end" in line]
    assert (
        len(flagged) == 1
        and "`regularizer=l1` selected the smallest regularizer.strength tried (0.0001) for 5 of 5"
        in flagged[0]
    )
    selection = pd.read_csv(written.directory / "tuned_selection.csv")
    assert set(selection.loc[selection["choice.regularizer"] == "none", "candidates"]) == {1}
    assert set(selection.loc[selection["choice.regularizer"] == "l1", "candidates"]) == {4}
    assert (
        "runs: 60 (60 finished and counted; 15 of them selected at their tuned settings" in written.markdown
    )


def test_selection_uses_the_monitor_that_chose_the_tested_weights(store):
    runs = []
    for seed in range(2):
        for strength, val_acc, val_loss, acc in (("1e-3", 0.9, 0.40, 0.88), ("1e-2", 0.8, 0.30, 0.78)):
            runs.append(
                {
                    "params": {
                        "choice.regularizer": "l2",
                        "regularizer.strength": strength,
                        "callbacks.best_weights.monitor": "val/acc",
                        "callbacks.best_weights.mode": "max",
                        "seed": str(seed),
                    },
                    "metrics": {
                        "test/acc": acc,
                        "fit/best_val_loss": val_loss,
                        "fit/selection_score": val_acc,
                    },
                }
            )
    log_sweep(store, "monitor", runs)
    written = write(store, "monitor", tuned=["regularizer.strength"])
    selection = pd.read_csv(written.directory / "tuned_selection.csv")
    assert set(selection["regularizer.strength"].astype(str)) == {"0.001"}  # highest val/acc, not lowest loss
    assert "highest `val/acc` at the tested epoch" in written.markdown


def test_failed_runs_are_outcomes_with_a_worst_case_reading(store):
    runs = _regularizer_runs({"none": [0.80, 0.81, 0.79, 0.80], "l1": [0.83, 0.835, 0.82, 0.83]}, range(4))
    runs.append({"params": {"choice.regularizer": "l1", "seed": "4"}, "status": "FAILED"})
    runs.append({"params": {"choice.regularizer": "none", "seed": "4"}, "metrics": {"test/acc": 0.80}})
    runs.append({"params": {"choice.regularizer": "l1", "seed": "5"}, "status": "FAILED"})
    runs.append({"params": {"choice.regularizer": "none", "seed": "5"}, "metrics": {"test/acc": 0.80}})
    log_sweep(store, "failures", runs)
    written = write(store, "failures")
    summary = written.summary.set_index("config")
    assert summary.loc["regularizer=l1", "failed"] == 2 and summary.loc["regularizer=none", "failed"] == 0
    (row,) = written.comparisons.itertuples()
    assert row.verdict == "better" and row.verdict_worst_case != "better"
    assert (
        f"counting failed runs at the worst observed test/acc: all runs becomes {row.verdict_worst_case}"
        in (written.markdown)
    )


@pytest.mark.parametrize(
    ("overrides", "monitor", "pick"),
    [
        (
            ["callbacks.best_weights.monitor=val/acc", "callbacks.best_weights.mode=max"],
            "val/acc",
            "first max",
        ),
        (["callbacks=none"], "val/loss", "last"),
    ],
)
def test_the_tested_epoch_and_the_selection_score_follow_the_best_weights_monitor(overrides, monitor, pick):
    import reglab

    result = reglab.run(
        [*overrides, "trainer.max_epochs=5", "model.hidden=[16]", "logger=none", "data.batch_size=256"],
        verbose=False,
    )
    values = result.history[monitor]
    epoch = int(np.argmax(values)) if pick == "first max" else len(values) - 1
    assert result.metrics["fit/best_epoch"] == epoch
    assert result.metrics["fit/selection_score"] == pytest.approx(values[epoch])
    assert result.metrics["fit/best_val_loss"] == pytest.approx(result.history["val/loss"][epoch])
    assert result.metrics["data/resplit"] == 1.0 and result.metrics["data/n_test"] > 0
