"""scripts/zou_hastie.py: the paper's parametrization against reglab's and scikit-learn's, the
standardization, the rescaled elastic net, the bootstrap statistics and the words of the page,
and reglab against scikit-learn on a short run (the full table is in docs/zou_hastie.md)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("zou_hastie", ROOT / "scripts" / "zou_hastie.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rep(script):
    return script.replicate(1, seed=0)


def test_training_columns_are_standardized_with_training_statistics(script, rep):
    from reglab.data.synthetic import SyntheticDataModule

    n = len(rep.y)
    np.testing.assert_allclose(rep.z.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose((rep.z**2).sum(axis=0), n, rtol=1e-6)  # sum of squares n: variance 1
    raw = SyntheticDataModule(design="zou_hastie_1", standardize=False, seed=0)
    raw.setup()
    x, x_val = (raw.tensors[s][0].double().numpy() for s in ("train", "val"))
    np.testing.assert_allclose(rep.sd, x.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(rep.z_val, (x_val - x.mean(axis=0)) / x.std(axis=0), atol=1e-5)


def test_the_mapping_solves_the_papers_naive_elastic_net(script, rep):
    """scikit-learn's ElasticNet at ``paper_to_reglab(lambda1, lambda2)`` meets the optimality
    conditions of ``|y - U b|^2 + lambda2 |b|^2 + lambda1 |b|_1`` with ``U = Z / sqrt(n)``,
    ``b = sqrt(n) w``: ``g = 2 U'(y - U b) - 2 lambda2 b`` is ``lambda1 sign(b)`` on the support and
    at most ``lambda1`` in size off it."""
    from sklearn.linear_model import ElasticNet

    n = len(rep.y)
    lambda1, lambda2 = 3.0, 0.1
    (strength,), (ratio,) = script.paper_to_reglab([lambda1], [lambda2], n)
    assert strength * (1 - ratio) / 2 == pytest.approx(lambda2)
    assert np.sqrt(n) * strength * ratio == pytest.approx(lambda1)
    fit = ElasticNet(alpha=strength / 2, l1_ratio=ratio, tol=1e-12, max_iter=100_000).fit(rep.z, rep.y)
    u, b, y = rep.z / np.sqrt(n), np.sqrt(n) * fit.coef_, rep.y - rep.y.mean()
    g = 2 * u.T @ (y - u @ b) - 2 * lambda2 * b
    support = b != 0
    assert support.any() and not support.all()
    np.testing.assert_allclose(g[support], lambda1 * np.sign(b[support]), rtol=1e-6)
    assert np.all(np.abs(g[~support]) <= lambda1 * (1 + 1e-9))


def test_rescaled_estimate_and_selection(script, rep):
    grid = script.Grid(
        np.array([0, 0, 0, 1]), np.array([1.0, 2.0, 3.0, 0.0]), np.array([0.0, 0.5, 10.0, 1.0])
    )
    coef = np.random.default_rng(0).standard_normal((4, len(rep.sd)))
    fits = script.Fits(grid, coef, np.zeros(4))
    scaled = script.rescaled(fits, rep)
    np.testing.assert_allclose(scaled.coef, coef * np.array([1.0, 1.5, 11.0, 2.0])[:, None])
    np.testing.assert_allclose(scaled.intercept, rep.y.mean() - scaled.coef @ rep.z.mean(axis=0))
    # the true coefficients in standardized units (w = beta * sd) have model error 0 and win
    fits.coef[1] = rep.coef * rep.sd
    fits.intercept[1] = rep.y.mean()
    chosen = script.select(fits, rep)
    assert chosen["naive elastic net"] == (pytest.approx(0, abs=1e-20), 2.0, 0.5)
    assert chosen["lasso"][1:] == (1.0, 0.0)  # the only lambda2 = 0 point


def test_bootstrap_se_of_a_median_by_hand(script):
    values = np.array([1.0, 4.0, 2.0])
    draws = np.random.default_rng(7).integers(0, 3, size=(5, 3))
    medians = [sorted(values[row])[1] for row in draws]
    mean = sum(medians) / 5
    by_hand = (sum((m - mean) ** 2 for m in medians) / 4) ** 0.5
    assert script.median_se(values, 5, seed=7) == pytest.approx(by_hand)
    # two values: the resample median is 0, 1 or 2 with probabilities 1/4, 1/2, 1/4 (sd sqrt(1/2))
    assert script.median_se(np.array([0.0, 2.0]), 20_000) == pytest.approx(0.5**0.5, abs=0.02)


def test_paired_difference(script):
    result = script.paired(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 1.0, 5.0]), 400)
    assert (result["median"], result["below"], result["equal"], result["above"]) == (-0.5, 2, 1, 1)
    assert -1.0 <= result["low"] <= result["median"] <= result["high"] <= 2.0


def test_findings_say_what_the_medians_show(script):
    def summary(medians, low=-1.0, high=1.0):
        return {
            "median": dict(zip(script.METHODS, medians, strict=True)),
            "se": dict.fromkeys(script.METHODS, 0.1),
            "paired": {"low": low, "high": high},
        }

    # example 1 in the paper's order (elastic net < lasso < ridge < naive); example 4 lasso best
    results = [
        {"example": 1, "sklearn": summary([3.0, 2.0, 4.0, 5.0], low=-1.5, high=-0.5)},
        {"example": 4, "sklearn": summary([30.0, 40.0, 60.0, 45.0])},
    ]
    words = script.findings(results, "sklearn")
    assert words[0].startswith("the elastic net's median model error is below the lasso's in example 1 ")
    assert "lies below 0 in example 1, contains 0 in example 4 and lies above 0 in no example" in words[1]
    assert "in the paper's order in example 1;" in words[2]
    assert words[3] == (
        "7 of the 8 medians are below the paper's; their ratio to the paper's ranges from 0.64 "
        "(example 4, lasso) to 1.16 (example 4, elastic net)."
    )
    assert script.close(results[0]["sklearn"]) == []
    assert script.close(summary([1.0, 1.05, 3.0, 4.0])) == ["lasso ~ elastic net"]


def test_reglab_agrees_with_sklearn_on_the_same_points(script, tmp_path):
    """One replicate, 2 points per path (14 stacked members), 300 ISTA steps: reglab selects
    scikit-learn's points, with the same model errors."""
    page = tmp_path / "page.md"
    (result,) = script.main(
        [
            "--examples=1",
            "--replicates=2",
            "--reglab-replicates=1",
            "--path=6",
            "--reglab-every=3",
            "--steps=300",
            "--bootstrap=50",
            f"--output={page}",
            f"paths.output_dir={tmp_path}",
        ]
    )
    agreement = result["agreement"]
    assert agreement["same"] == agreement["total"] == 4
    assert agreement["error_gap"] < 1e-4
    assert agreement["objective_max"] < 1e-6
    assert result["sklearn"]["n"] == 2 and result["reglab"]["n"] == 1
    assert "| 1 | elastic net | 2.51 |" in page.read_text()


@pytest.mark.slow
def test_the_preset_trains_stacked_and_records_the_papers_error(output_dir):
    """experiment=zou_hastie on one example, 2 replicates and 2 strengths: every run FINISHED,
    stacked, with the population model error and support recovery recorded."""
    from conftest import child_runs, run_cli

    done = run_cli(
        [
            "-m",
            "experiment=zou_hastie",
            "data.design=zou_hastie_1",
            "seed=0,1",
            "regularizer.strength=0.1,1",
            "trainer.max_epochs=5",
            "trainer.check_val_every_n_epoch=5",
        ],
        output_dir,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = child_runs(output_dir)
    assert len(runs) == 12 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert run.data.tags["reglab.engine"] == "stacked"
        assert run.data.metrics["test/population_model_error"] > 0
        assert 0 <= run.data.metrics["test/support_fpr"] <= 1
