"""The article's claims study: the quantities and the verdicts against hand computations, the
claim specs' checks, the tuned selection and the paired differences on a hand-made table of fits,
and tiny studies trained end to end."""

from __future__ import annotations

import importlib.util
import math
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from omegaconf import OmegaConf
from scipy import stats

from reglab.errors import ConfigError
from reglab.report.directions import better_sign
from reglab.studies import article
from reglab.studies.article_study import Arm, Claim, Fits, differences, grid_ends

# --- the quantities ------------------------------------------------------------------------------


def test_proportional_shrinkage_has_no_spread_and_soft_thresholding_has():
    assert article.ratio_spread([0.5, 1.0, -0.25], [1.0, 2.0, -0.5], [1, 1, 1]) == 0.0
    # over the true support (the first three; the fourth is 0 in the unpenalized fit):
    # ratios 0.9, 0.95, 0.5, mean 0.7833, sd (ddof 0) 0.2013
    truth = [1.0, 2.0, 0.5, 1.0, 0.0]
    spread = article.ratio_spread([0.9, -1.9, 0.2, 3.0, 0.4], [1.0, -2.0, 0.4, 0.0, 0.01], truth)
    assert spread == pytest.approx(0.2013 / 0.7833, rel=1e-3)


def test_exact_zeros_support_f1_and_groups_by_hand():
    assert article.exact_zeros([0.0, 1e-9, 0.0, 2.0]) == 0.5
    # truth {0, 1}, selected {0, 2}: TP 1, FP 1, FN 1 -> 2 / (2 + 2)
    assert article.support_f1([1.0, 0.0, 0.3, 0.0], [2.0, 2.0, 0.0, 0.0]) == 0.5
    assert article.support_f1([0.0, 0.0], [0.0, 0.0]) == 1.0
    # groups of 3: whole (all selected), split, whole (all dropped); the tail is not a group
    coef = [1, 2, 3, 0, 1, 0, 0, 0, 0, 5]
    assert article.groups_whole(coef, n_groups=3, group_size=3) == pytest.approx(2 / 3)


def test_the_largest_rate_that_trains_and_the_grid_accuracy_count_a_diverged_fit():
    rates, accuracies = [0.01, 0.1, 1.0], [0.9, 0.6, math.nan]
    assert article.largest_lr(rates, accuracies) == pytest.approx(-1.0)
    assert article.largest_lr(rates, [0.2, 0.4, math.nan]) == pytest.approx(-3.0)  # none trains
    assert article.grid_accuracy([0.9, 0.6, math.nan], classes=10) == pytest.approx((0.9 + 0.6 + 0.1) / 3)


# --- the verdicts --------------------------------------------------------------------------------


def prediction(expect: str, margin: float = 0.1, quantity: str = "q") -> article.Prediction:
    return article.Prediction("c", quantity, "a", "b", expect, margin)


def test_verdicts_follow_the_predicted_sign_with_holm_and_consistent_intervals():
    """Three predictions, one family: by hand, t = mean / (sd / sqrt(n)), Holm's step-down
    p-values, intervals of level 1 - alpha p / p_Holm in the quantity's units."""
    up = [1.0, 1.2, 0.8, 1.1, 0.9]  # mean 1, sd sqrt(0.1 / 4) = 0.1581
    down = [-0.5, -0.7, -0.3, -0.6, -0.4]  # mean -0.5, same sd: predicted up, measured down
    noisy = [0.3, -0.2, 0.1, -0.4, 0.25]
    predictions = [prediction("higher"), prediction("higher"), prediction("higher", margin=0.05)]
    rows = [article.test_row(d, 0.0) for d in (up, down, noisy)]
    decided = article.decide(predictions, rows)

    se = math.sqrt(0.1 / 4) / math.sqrt(5)
    p = [2 * stats.t.sf(1.0 / se, 4), 2 * stats.t.sf(0.5 / se, 4)]
    noisy_se = np.std(noisy, ddof=1) / math.sqrt(5)
    p.append(2 * stats.t.sf(abs(np.mean(noisy)) / noisy_se, 4))
    holm = [3 * p[0], max(3 * p[0], 2 * p[1]), min(1.0, max(3 * p[0], 2 * p[1], p[2]))]
    np.testing.assert_allclose(decided.p, p, rtol=1e-9)
    np.testing.assert_allclose(decided.p_holm, holm, rtol=1e-9)
    assert list(decided.verdict) == ["supported", "contradicted", "inconclusive"]
    assert better_sign(article.ORIENTED) == 1  # "better" under the oriented name: as predicted

    level = 1 - 0.05 * p[1] / holm[1]
    half = stats.t.ppf(0.5 + level / 2, 4) * se
    assert decided.ci_level[1] == pytest.approx(level)
    assert (decided.ci_low[1], decided.ci_high[1]) == pytest.approx((-0.5 - half, -0.5 + half))
    assert decided.ci_high[1] < 0 < decided.ci_low[0]
    # seeds a test at the first Holm level (alpha / 3) needs for a true difference of the margin
    needed = next(
        n
        for n in range(2, 1000)
        if stats.nct.sf(
            stats.t.ppf(1 - 0.05 / 6, n - 1), n - 1, 0.05 / (np.std(noisy, ddof=1) / math.sqrt(n))
        )
        + stats.nct.cdf(
            -stats.t.ppf(1 - 0.05 / 6, n - 1), n - 1, 0.05 / (np.std(noisy, ddof=1) / math.sqrt(n))
        )
        >= 0.8
    )
    assert decided.seeds_needed[2] == needed and math.isnan(decided.seeds_needed[0])


def test_a_lower_prediction_is_supported_by_a_negative_difference_with_its_interval_in_its_units():
    decided = article.decide([prediction("lower")], [article.test_row([-0.5, -0.7, -0.3, -0.6, -0.4], 0.0)])
    row = decided.iloc[0]
    assert row.verdict == "supported" and row.mean_difference == pytest.approx(-0.5)
    assert row.ci_low < row.mean_difference < row.ci_high < 0


def test_seeds_that_resplit_one_data_set_take_the_corrected_t():
    """se = sd sqrt(1/n + n_test/n_train): the same differences are no longer significant."""
    differences = [0.010, 0.020, 0.015, 0.012, 0.018]
    plain, corrected = (article.test_row(differences, r) for r in (0.0, 0.25))
    sd = np.std(differences, ddof=1)
    assert corrected["se"] == pytest.approx(sd * math.sqrt(1 / 5 + 0.25))
    assert corrected["se"] / plain["se"] == pytest.approx(math.sqrt((0.2 + 0.25) / 0.2))
    decided = article.decide([prediction("higher", 0.01)] * 2, [plain, corrected])
    assert list(decided.method) == ["paired t", "corrected resampled t (Nadeau & Bengio 2003)"]


def test_a_pooled_estimate_is_tested_with_its_bootstrap_standard_error():
    row = article.estimate_row(-2.0, 0.5, n=30)
    assert row["p"] == pytest.approx(2 * stats.t.sf(4.0, 29))
    assert row["sd"] == pytest.approx(0.5 * math.sqrt(30))
    assert article.decide([prediction("lower")], [row]).verdict[0] == "supported"


def test_a_claim_is_supported_only_when_every_prediction_is():
    assert article.claim_verdict(["supported", "supported"]) == "supported"
    assert article.claim_verdict(["supported", "inconclusive"]) == "inconclusive"
    assert article.claim_verdict(["supported", "contradicted"]) == "contradicted"


# --- the claim specs -----------------------------------------------------------------------------

SPEC = {
    "claim": "c",
    "experiment": "e",
    "overrides": [],
    "contexts": {"small": [], "large": []},
    "arms": {"a": {"grid": {"x": [1, 2, 3]}}, "b": {}, "c": {}},
    "predictions": [
        {
            "quantity": "test/acc",
            "treatment": "a",
            "reference": ["b", "c"],
            "expect": "higher",
            "margin": 0.01,
            "context": "large - small",
        }
    ],
}


def spec(**changes) -> dict:
    return OmegaConf.to_container(OmegaConf.merge(SPEC, changes))


def test_a_claim_spec_builds_its_jobs():
    claim = Claim.from_spec("c", spec(), seeds=2)
    assert claim.predictions[0].reference == ("b", "c")
    assert len(claim.jobs()) == 2 * (3 + 1 + 1) * 2
    assert claim.jobs()[0] == (("small", "a", 0, 0), ["x=1", "seed=0"])
    assert Arm(grid={"x": [1, 2], "y": ["p"]}).points() == [["x=1", "y=p"], ["x=2", "y=p"]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seeds": 1}, r"claims.c.seeds=1 is not allowed"),
        ({"colour": 1}, r"claims.c: unknown keys \['colour'\]; allowed"),
        (
            {"arms": {"b": {"grid": {}, "select": "best"}}},
            r"claims.c.arms.b.select='best' is not allowed: must be one of validation, all",
        ),
        (
            {"predictions": [{**SPEC["predictions"][0], "treatment": "z"}]},
            r"predictions\[0\].treatment='z' is not allowed: must be one of a, b, c",
        ),
        (
            {"predictions": [{**SPEC["predictions"][0], "quantity": "accuracy"}]},
            r"predictions\[0\].quantity='accuracy' is not allowed",
        ),
        (
            {"predictions": [{**SPEC["predictions"][0], "context": "huge"}]},
            r"predictions\[0\].context='huge' is not allowed: must be one of small, large",
        ),
        (
            {"predictions": [{**SPEC["predictions"][0], "expect": "up"}]},
            r"expect='up' is not allowed: must be one of higher, lower",
        ),
        (
            {"predictions": [{**SPEC["predictions"][0], "quantity": "variance"}]},
            r"predictions\[0\]=\"variance of .* is not allowed: must be one reference arm in one context",
        ),
    ],
)
def test_a_bad_claim_spec_is_refused_naming_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        Claim.from_spec("c", spec(**changes), seeds=2)


# --- selection and differences on a hand-made table of fits --------------------------------------


def fit(acc: float | None, score: float = 1.0, mode: str = "min"):
    """A stand-in for a Result: its metrics (none: FAILED) and the best-weights mode."""
    metrics = {} if acc is None else {"test/acc": acc, "fit/selection_score": score}
    return SimpleNamespace(
        metrics=metrics, config=OmegaConf.create({"callbacks": {"best_weights": {"mode": mode}}})
    )


def table_of_fits() -> Fits:
    """Arm a's grid is tuned on validation (lowest score); b and c are single fits; on seed 1
    c scores better than b, on seed 0 b does."""
    claim = Claim.from_spec("c", spec(), seeds=2)
    results = {}
    for context, shift in (("small", 0.0), ("large", 0.1)):
        grids = {
            0: [fit(0.5 + shift, 0.3), fit(0.9, 0.2), fit(None)],  # the failed point is never selected
            1: [fit(0.6 + shift, 0.1), fit(0.95, 0.4), fit(0.99, 0.5)],
        }
        for seed, grid in grids.items():
            for point, result in enumerate(grid):
                results[(context, "a", point, seed)] = result
            results[(context, "b", 0, seed)] = fit(0.4, 0.2 + 0.2 * seed)
            results[(context, "c", 0, seed)] = fit(0.45, 0.3)
    return Fits(claim, results)


def test_each_seed_selects_its_best_validation_point_and_its_best_single_arm():
    fits = table_of_fits()
    assert fits.selected("small", "a", 0).metrics["test/acc"] == 0.9  # score 0.2 < 0.3
    assert fits.point("small", "a", 1) == "x=1"
    assert fits.best_of("small", ["b", "c"], 0) == "b" and fits.best_of("small", ["b", "c"], 1) == "c"
    assert fits.failed() == 2


def test_an_arm_tuned_to_its_grid_s_end_on_most_seeds_is_flagged():
    fits = table_of_fits()
    assert grid_ends(fits) == []  # seed 0 chose x=2, seed 1 x=1: one of two at the end
    fits.results[("large", "a", 0, 0)] = fit(0.5, 0.0)
    assert grid_ends(fits) == ["a (large): x at the smallest value tried, 1, on 2 of 2 seeds"]


def test_an_interaction_is_the_difference_of_two_contexts_differences():
    """seed 0: (0.9 - 0.4) - (0.9 - 0.4) = 0; seed 1: (0.7 - 0.45) - (0.6 - 0.45) = 0.1."""
    fits = table_of_fits()
    assert differences(fits.claim.predictions[0], fits) == pytest.approx([0.0, 0.1])


def test_a_maximized_monitor_selects_the_highest_score():
    claim = Claim.from_spec("c", spec(), seeds=2)
    results = {
        (c, "a", p, 0): fit(acc, score, "max")
        for c in ("small", "large")
        for p, (acc, score) in enumerate([(0.1, 0.2), (0.2, 0.9), (0.3, 0.5)])
    }
    assert Fits(claim, results).selected("small", "a", 0).metrics["test/acc"] == 0.2


# --- tiny studies ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    spec_ = importlib.util.spec_from_file_location("article_script", ROOT / "scripts" / "article.py")
    module = importlib.util.module_from_spec(spec_)
    sys.modules[spec_.name] = module
    spec_.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_tiny_shrinkage_claim_measures_exact_zeros_of_l1_and_none_of_l2(output_dir):
    """ISTA on 20 features, 2 seeds, 200 steps: L1's proximal steps leave exact zeros, L2's
    none; ridge's ratios spread less than the lasso's."""
    from reglab.config import compose
    from reglab.studies.article_study import run_claim

    settings = OmegaConf.to_container(compose(["experiment=article"]).study.article, resolve=True)
    claim = Claim.from_spec("shrinkage", {**settings["claims"]["shrinkage"], "seeds": 2}, seeds=2)
    overrides = [
        "logger=none",
        f"paths.output_dir={output_dir}",
        "trainer.max_epochs=3",
        "trainer.check_val_every_n_epoch=3",
    ]
    rows, table, run = run_claim(claim, overrides, max_members=64, draws=10)
    assert run["fits"] == 6 and run["failed"] == 0
    by_arm = table.set_index(["arm", "seed"])
    assert (by_arm.loc["l2", "exact_zeros"] == 0).all() and (by_arm.loc["l1", "exact_zeros"] > 0.5).all()
    assert (by_arm.loc["l2", "ratio_spread"] < by_arm.loc["l1", "ratio_spread"]).all()
    assert [r["n"] for r in rows] == [2, 2]
    zeros = by_arm.loc["l1", "exact_zeros"].to_numpy() - by_arm.loc["l2", "exact_zeros"].to_numpy()
    assert rows[1]["mean_difference"] == pytest.approx(zeros.mean())


@pytest.mark.slow
def test_the_quick_study_writes_claims_md_and_records_every_fit(script, output_dir):
    from conftest import child_runs

    folder = script.main(["--quick", "--claims", "shrinkage,batchnorm_lr", f"paths.output_dir={output_dir}"])
    claims = pd.read_csv(folder / "claims.csv")
    assert list(claims.claim) == ["shrinkage"] * 2 + ["batchnorm_lr"] * 2
    assert set(claims.verdict) <= {"supported", "contradicted", "inconclusive"}
    page = (folder / "claims.md").read_text()
    assert (
        "## Batch normalization enables higher learning rates" in page
        and "largest_lr: batchnorm - plain > 0" in page
    )
    runs = child_runs(output_dir)  # shrinkage 3 arms x 2 seeds, batch norm 2 arms x 2 rates x 2 seeds
    assert len(runs) == 6 + 8
    diverged = [r for r in runs if r.info.status != "FINISHED"]
    assert all("training diverged" in r.data.tags["reglab.failure_reason"] for r in diverged)
    measured = pd.read_csv(folder / "measurements.csv")
    assert (measured[measured.claim == "batchnorm_lr"].selected == "all").all()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--claims", "nope"], "--claims ['nope']: not in study.article.claims, which has"),
        (["dropuot=0.3"], "dropuot"),
        (["study.article.claims.shrinkage.seeds=1"], "study.article.claims.shrinkage.seeds=1 is not allowed"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(script, output_dir, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        script.main([*argv, "logger=none", f"paths.output_dir={output_dir}"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("article: error:") and message in error and "\n" not in error
