"""The bias-variance study: the data knobs that replicate training sets, the decompositions
against hand computations and simulations, reglab's ridge against its closed form on a fixed
design with resampled noise, and a tiny study run end to end."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import ROOT

from reglab.studies import bias_variance as bv

# --- the data knobs ----------------------------------------------------------------------------


def synthetic(**kwargs):
    from reglab.data.synthetic import SyntheticDataModule

    data = SyntheticDataModule(design="tibshirani_1", standardize=False, **kwargs)
    data.setup()
    return data


def test_a_split_seed_equal_to_the_seed_changes_nothing():
    plain, same = synthetic(seed=3), synthetic(seed=3, split_seed=3)
    for split in ("train", "val", "test"):
        for a, b in zip(plain.tensors[split], same.tensors[split], strict=True):
            assert (a == b).all()


def test_synthetic_seeds_draw_fresh_training_sets_around_shared_held_out_points():
    one, two = synthetic(seed=1, split_seed=0), synthetic(seed=2, split_seed=0)
    assert not (one.tensors["train"][0] == two.tensors["train"][0]).all()
    for split in ("val", "test"):
        assert (one.tensors[split][0] == two.tensors[split][0]).all()
        assert (one.tensors[split][1] == two.tensors[split][1]).all()
    assert (one.tensors["test"][1] == synthetic(seed=0).tensors["test"][1]).all()


def test_a_fixed_design_resamples_only_the_training_noise():
    one, two = (synthetic(seed=s, split_seed=0, fixed_design=True) for s in (1, 2))
    assert (one.tensors["train"][0] == two.tensors["train"][0]).all()
    assert (one.clean_targets["train"] == two.clean_targets["train"]).all()
    noise = [(d.tensors["train"][1] - d.clean_targets["train"]).numpy().ravel() for d in (one, two)]
    assert abs(np.corrcoef(*noise)[0, 1]) < 0.6  # independent draws (20 points)
    # seed == split_seed: the noise is not the stream the features came from
    same = synthetic(seed=0, split_seed=0, fixed_design=True)
    residual = (same.tensors["train"][1] - same.clean_targets["train"]).numpy().ravel()
    first = same.tensors["train"][0].numpy()[:, 0]
    assert abs(np.corrcoef(residual, first)[0, 1]) < 0.6


def test_a_fixed_design_needs_a_split_seed():
    from reglab.data.synthetic import SyntheticDataModule
    from reglab.errors import ConfigError

    with pytest.raises(ConfigError, match="data.fixed_design=true needs data.split_seed"):
        SyntheticDataModule(fixed_design=True)


def test_a_bootstrap_resamples_the_training_split_and_keeps_the_held_out_points():
    from reglab.data.sklearn_sets import SklearnDataModule

    def diabetes(**kwargs):
        data = SklearnDataModule("diabetes", standardize=False, **kwargs)
        data.setup()
        return data

    fixed = diabetes(seed=0)
    drawn = [diabetes(seed=s, split_seed=0, bootstrap=True) for s in (1, 2)]
    rows = {tuple(r) for r in fixed.tensors["train"][0].numpy()}
    for data in drawn:
        x = data.tensors["train"][0].numpy()
        assert len(x) == len(fixed.tensors["train"][0])
        assert {tuple(r) for r in x} <= rows  # drawn from the training split
        assert len(np.unique(x, axis=0)) < len(x)  # with replacement
        for split in ("val", "test"):
            assert (data.tensors[split][0] == fixed.tensors[split][0]).all()
    assert not (drawn[0].tensors["train"][0] == drawn[1].tensors["train"][0]).all()


# --- the decompositions ------------------------------------------------------------------------


def test_the_squared_loss_split_is_unbiased_for_a_random_effects_simulation():
    """f[b, s] = mu + a_b + e_bs with Var a = 0.5, Var e = 0.2 and mu - t = 0.3: over 4000
    simulated studies of 5 training sets x 3 seeds the estimates average to the truth, and
    bias^2 + variance equals the mean squared difference from the target exactly."""
    rng = np.random.default_rng(0)
    studies, replicates, seeds, points = 4000, 5, 3, 4
    data = rng.normal(0, np.sqrt(0.5), (studies, replicates, 1, points))
    init = rng.normal(0, np.sqrt(0.2), (studies, replicates, seeds, points))
    pred, target = 1.3 + data + init, np.ones(points)
    parts = [bv.squared_loss(p, target, noise=0.25) for p in pred]
    mean = {k: np.mean([p[k] for p in parts]) for k in parts[0]}
    assert mean["variance_data"] == pytest.approx(0.5, abs=0.03)
    assert mean["variance_init"] == pytest.approx(0.2, abs=0.01)
    assert mean["bias"] == pytest.approx(0.09, abs=0.01)
    first = parts[0]
    assert first["bias"] + first["variance"] == pytest.approx(np.mean((pred[0] - target) ** 2))
    assert first["error"] == pytest.approx(first["bias"] + first["variance"] + 0.25)
    assert first["variance"] == pytest.approx(first["variance_data"] + first["variance_init"])


def test_with_observed_targets_the_noise_comes_out_of_the_bias():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(6, 2, 10)), rng.normal(size=10)
    clean, observed = bv.squared_loss(pred, target, 0.5), bv.squared_loss(pred, target, 0.5, observed=True)
    assert observed["bias"] == pytest.approx(clean["bias"] - 0.5)
    assert observed["error"] == pytest.approx(np.mean((pred - target) ** 2))


def test_one_seed_leaves_the_variance_unsplit():
    parts = bv.squared_loss(np.random.default_rng(2).normal(size=(5, 1, 3)), np.zeros(3))
    assert np.isnan(parts["variance_data"]) and np.isnan(parts["variance_init"])
    assert parts["variance"] > 0


def test_domingos_zero_one_decomposition_by_hand():
    """Five fits on four points, three classes (one column per point):

    point 0, label 0: 0 0 0 1 1 -> main 0, unbiased, V = 2/5, loss 2/5
    point 1, label 1: 0 0 2 2 1 -> main 0 (tie with 2: the smaller), biased, V = 3/5,
                                   P(f = y) = 1/5, loss 4/5
    point 2, label 2: 2 2 2 1 2 -> main 2, unbiased, V = 1/5, loss 1/5
    point 3, label 0: 1 1 1 0 2 -> main 1, biased, V = 2/5, P(f = y) = 1/5, loss 4/5

    error = 11/20, bias = 2/4, unbiased variance = (2/5 + 1/5) / 4 = 3/20, biased variance
    = (3/5 + 2/5) / 4 = 1/4, net variance = 3/20 - (1/5 + 1/5) / 4 = 1/20."""
    fits = np.array([[0, 0, 2, 1], [0, 0, 2, 1], [0, 2, 2, 1], [1, 2, 1, 0], [1, 1, 2, 2]])
    labels = np.array([0, 1, 2, 0])
    expected = {
        "error": 11 / 20,
        "bias": 1 / 2,
        "variance": 1 / 20,
        "variance_unbiased": 3 / 20,
        "variance_biased": 1 / 4,
    }
    assert bv.zero_one_loss(fits.reshape(5, 1, 4), labels) == pytest.approx(expected)
    assert bv.zero_one_loss(fits[:4].reshape(2, 2, 4), labels)["error"] == pytest.approx(
        np.mean(fits[:4] != labels)
    )


def test_with_two_classes_the_net_variance_is_unbiased_minus_biased_variance():
    rng = np.random.default_rng(3)
    parts = bv.zero_one_loss(rng.integers(0, 2, (4, 3, 50)), rng.integers(0, 2, 50))
    assert parts["variance"] == pytest.approx(parts["variance_unbiased"] - parts["variance_biased"])
    assert parts["error"] == pytest.approx(parts["bias"] + parts["variance"])


def test_cross_entropy_decomposition_by_hand():
    """Two training sets x two seeds, one point of label 0, two classes. log p_bar is the mean
    of the log probabilities, normalized; the variance is the mean KL(p_bar || p), and its data
    and seed parts are KL(p_bar || p_bar_b) and KL(p_bar_b || p) averaged."""
    probs = np.array([[[0.9, 0.1], [0.6, 0.4]], [[0.7, 0.3], [0.2, 0.8]]])  # (B, S, C)
    log_probs = np.log(probs)[:, :, None, :]
    labels = np.array([0])

    def normalized(logs):
        p = np.exp(logs.mean(axis=0))
        return p / p.sum()

    def kl(p, q):
        return float(np.sum(p * np.log(p / q)))

    p_bar = normalized(np.log(probs).reshape(4, 2))
    per_set = [normalized(np.log(probs[b])) for b in range(2)]
    expected = {
        "error": -np.mean(np.log(probs[:, :, 0])),
        "bias": -np.log(p_bar[0]),
        "variance": np.mean([kl(p_bar, p) for p in probs.reshape(4, 2)]),
        "variance_data": np.mean([kl(p_bar, q) for q in per_set]),
        "variance_init": np.mean([kl(per_set[b], probs[b, s]) for b in range(2) for s in range(2)]),
    }
    parts = bv.cross_entropy(log_probs, labels)
    assert parts == pytest.approx(expected)
    assert parts["error"] == pytest.approx(parts["bias"] + parts["variance"])
    assert parts["variance"] == pytest.approx(parts["variance_data"] + parts["variance_init"])


def test_the_nearest_neighbour_noise_estimate_of_a_smooth_function():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (3000, 1))
    y = np.sin(2 * x[:, 0]) + rng.normal(0, 0.5, 3000)
    assert bv.nearest_neighbour_noise(x, y) == pytest.approx(0.25, rel=0.08)


def test_standard_errors_resample_training_sets_with_their_seeds():
    """The bootstrap SE of a mean over training sets is close to its textbook sd / sqrt(B)."""
    values = np.random.default_rng(5).normal(size=(40, 2))
    errors = bv.standard_errors(lambda v: {"mean": float(v.mean())}, [values], draws=2000)
    assert errors["mean"] == pytest.approx(values.mean(axis=1).std(ddof=1) / np.sqrt(40), rel=0.1)


# --- ridge against its closed form ---------------------------------------------------------------

N_TRAIN, N_TEST, SIGMA, STRENGTH, REPLICATES = 40, 400, 1.0, 0.5, 60


def ridge_moments(x: np.ndarray, coef: np.ndarray, sigma: float, strength: float):
    """Mean and covariance of reglab's ridge coefficients ``w`` on the fixed design ``x`` with
    noise ``sigma``: reglab minimizes ``|y - X w - c|^2 / n + strength |w|^2 / 2`` (intercept
    ``c`` not penalized), so ``w = A Xc' y`` with ``Xc`` the centred design and
    ``A = (Xc' Xc + n strength / 2 I)^-1``: ``E w = A Xc' Xc coef``, ``Cov w = sigma^2 A Xc' Xc A'``,
    and ``c = mean(y) - mean(x)' w``."""
    n, p = x.shape
    centred = x - x.mean(axis=0)
    gram = centred.T @ centred
    a = np.linalg.inv(gram + n * strength / 2 * np.eye(p))
    return a @ gram @ coef, sigma**2 * a @ gram @ a.T


@pytest.fixture(scope="module")
def ridge(tmp_path_factory):
    """REPLICATES ridge fits on one fixed design, the noise redrawn (data.seed) each time."""
    from reglab.stacked.api import run_variations

    base = [
        "data=synthetic",
        "data.design=null",
        "data.n_features=5",
        "data.n_informative=3",
        "data.informative_coef=2",
        f"data.n_train={N_TRAIN}",
        "data.n_val=10",
        f"data.n_test={N_TEST}",
        f"data.sigma={SIGMA}",
        "model=linear",
        "regularizer=l2",
        "regularizer.mode=proximal",
        "optimizer=sgd",
        "optimizer.momentum=0",
        "optimizer.lr=0.1",
        "callbacks=none",
        "logger=none",
        "trainer.max_epochs=5",
        "trainer.check_val_every_n_epoch=5",
        f"paths.output_dir={tmp_path_factory.mktemp('ridge')}",
    ]
    fits = [
        {
            "seed": 0,
            "data.seed": b,
            "data.split_seed": 0,
            "data.fixed_design": True,
            "regularizer.strength": STRENGTH,
        }
        for b in range(REPLICATES)
    ]
    return run_variations(base, fits, max_members=REPLICATES, verbose=False)


@pytest.mark.slow
def test_ridge_coefficients_have_the_closed_form_mean_and_covariance(ridge):
    data = ridge[0].data
    x = data.tensors["train"][0].double().numpy()
    mean, cov = ridge_moments(x, data.coef, SIGMA, STRENGTH)
    w = np.stack([r.model.weight.detach().double().numpy().ravel() for r in ridge])
    z = (w.mean(axis=0) - mean) / np.sqrt(np.diag(cov) / REPLICATES)
    assert np.abs(z).max() < 4, z
    variances = w.var(axis=0, ddof=1)  # sd of a sample variance: var * sqrt(2 / (B - 1))
    assert np.all(np.abs(variances - np.diag(cov)) < 4 * np.diag(cov) * np.sqrt(2 / (REPLICATES - 1)))


@pytest.mark.slow
def test_ridge_bias_and_variance_are_the_closed_forms_within_monte_carlo_error(ridge):
    from reglab.studies.bias_variance_study import collect

    data = ridge[0].data
    x, x_test = (data.tensors[s][0].double().numpy() for s in ("train", "test"))
    mean, cov = ridge_moments(x, data.coef, SIGMA, STRENGTH)
    offset = x_test - x.mean(axis=0)  # f(x0) = mean(y) + (x0 - mean x)' w
    expected_f = x.mean(axis=0) @ data.coef + offset @ mean
    bias = np.mean((expected_f - x_test @ data.coef) ** 2)
    variance = np.mean(SIGMA**2 / N_TRAIN + np.einsum("ij,jk,ik->i", offset, cov, offset))

    study = _study(REPLICATES, 1)
    predictions = collect(ridge, study)
    assert predictions.noise == SIGMA**2 and not predictions.observed
    parts = bv.squared_loss(predictions.values, predictions.targets, predictions.noise)
    errors = bv.standard_errors(lambda v: bv.squared_loss(v, predictions.targets), [predictions.values])
    assert abs(parts["bias"] - bias) < 4 * errors["bias"], (parts["bias"], bias, errors["bias"])
    assert abs(parts["variance"] - variance) < 4 * errors["variance"], (parts["variance"], variance)
    # the test has the power to tell conventions apart: the shrinkage of (X'X + n s I)^-1 is refused
    doubled, _ = ridge_moments(x, data.coef, SIGMA, 2 * STRENGTH)
    wrong = np.mean((x.mean(axis=0) @ data.coef + offset @ doubled - x_test @ data.coef) ** 2)
    assert abs(parts["bias"] - wrong) > 4 * errors["bias"], (parts["bias"], wrong, errors["bias"])


@pytest.mark.slow
def test_ridge_components_add_up_to_the_measured_test_error(ridge):
    """bias^2 + variance + sigma^2 against the fits' own test/mse (noisy test targets): they
    differ by the test noise, ``mean_i (eps_i^2 + 2 eps_i (t_i - m_i)) - sigma^2``, whose standard
    error is that of a mean over the test points."""
    from reglab.studies.bias_variance_study import collect

    predictions = collect(ridge, _study(REPLICATES, 1))
    parts = bv.squared_loss(predictions.values, predictions.targets, predictions.noise)
    measured = np.mean([r.metrics["test/mse"] for r in ridge])
    observed = ridge[0].data.tensors["test"][1].double().numpy().ravel()
    assert measured == pytest.approx(np.mean((predictions.values - observed) ** 2), rel=1e-5)
    eps, centre = observed - predictions.targets, predictions.values.mean(axis=(0, 1))
    difference = eps**2 + 2 * eps * (predictions.targets - centre) - SIGMA**2
    se = difference.std(ddof=1) / np.sqrt(N_TEST)
    assert abs(measured - parts["error"]) < 4 * se, (measured, parts["error"], se)


# --- a tiny study --------------------------------------------------------------------------------


def _study(replicates: int, seeds: int, **kwargs):
    from reglab.studies.bias_variance_study import Study

    return Study(replicates=replicates, seeds=seeds, draws=20, **kwargs)


def test_a_tiny_classification_study_decomposes_what_its_fits_measured(output_dir):
    from reglab.studies.bias_variance_study import run_dataset

    spec = {
        "overrides": ["data=digits", "model=mlp", "model.hidden=[16]", "trainer.max_epochs=1"],
        "strengths": {"l2": [1e-4, 1e-1]},
    }
    rows = run_dataset("digits", spec, _study(3, 2), ["logger=none", f"paths.output_dir={output_dir}"])
    assert set(rows.loss) == {"zero_one", "cross_entropy"} and len(rows) == 4
    assert (rows.fits == 6).all() and (rows.failed == 0).all()
    assert (rows.training_sets == "bootstrap resamples").all()
    np.testing.assert_allclose(rows.error, rows.measured, rtol=1e-4)  # 1 - test/acc, test/loss
    np.testing.assert_allclose(rows.error, rows.bias + rows.variance, rtol=1e-9)
    entropy = rows[rows.loss == "cross_entropy"]
    np.testing.assert_allclose(entropy.variance, entropy.variance_data + entropy.variance_init, rtol=1e-9)


def test_a_tiny_regression_study_on_real_data_estimates_the_noise(output_dir):
    """Without noise-free targets the noise is estimated and taken out of the bias; the error is
    then the fits' own mean test/mse exactly."""
    from reglab.studies.bias_variance_study import NOISE_ESTIMATED, run_dataset

    spec = {
        "overrides": ["data=diabetes", "model=linear", "trainer.max_epochs=2"],
        "strengths": {"l2": [1e-3]},
    }
    rows = run_dataset("diabetes", spec, _study(3, 1), ["logger=none", f"paths.output_dir={output_dir}"])
    row = rows.iloc[0]
    assert row.loss == "squared" and row.noise_source == NOISE_ESTIMATED and row.noise > 0
    assert row.error == pytest.approx(row.measured, rel=1e-5)
    assert row.error == pytest.approx(row.bias + row.variance + row.noise)
    assert np.isnan(row.variance_init)  # one seed: the variance is not split


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "bias_variance_script", ROOT / "scripts" / "bias_variance.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_quick_study_writes_its_table_page_and_figure_and_records_every_fit(script, output_dir):
    import pandas as pd
    from conftest import child_runs

    folder = script.main(["--quick", "--datasets", "synthetic", f"paths.output_dir={output_dir}"])
    assert folder == output_dir / "studies" / "bias_variance"
    rows = pd.read_csv(folder / "bias_variance.csv")
    assert set(rows.regularizer) == {"l1", "l2"} and set(rows.loss) == {"squared"} and len(rows) == 4
    assert (rows.noise == 9.0).all() and (rows.training_sets == "fresh draws").all()
    page = (folder / "bias_variance.md").read_text()
    assert "![bias and variance on synthetic](bias_variance_synthetic.png)" in page
    assert "noise known" in page and (folder / "bias_variance_synthetic.png").stat().st_size > 10_000
    runs = child_runs(output_dir)  # 2 regularizers x 2 strengths x 3 training sets x 2 seeds
    assert len(runs) == 24 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.params["data.split_seed"] for r in runs} == {"0"}
    assert {r.data.params["data.seed"] for r in runs} == {"0", "1", "2"}


def test_a_data_set_of_the_study_needs_overrides_and_strengths():
    from reglab.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"datasets.x: unknown keys \['strength'\] and missing keys \['strengths'\]"
    ):
        _study(2, 1, datasets={"x": {"overrides": [], "strength": [1]}})
    with pytest.raises(ConfigError, match="datasets.x.strengths"):
        _study(2, 1, datasets={"x": {"overrides": [], "strengths": {"l2": []}}})


def test_an_unknown_data_set_is_refused(script, output_dir):
    with pytest.raises(SystemExit) as exit_:
        script.main(["--quick", "--datasets", "nope", "logger=none", f"paths.output_dir={output_dir}"])
    assert exit_.value.code == 2


@pytest.mark.slow
def test_train_py_runs_the_study_of_its_preset_and_refuses_a_sweep_of_it(output_dir):
    """``python train.py experiment=bias_variance`` runs the study (here: two training sets of
    one strength of ridge on the synthetic design); with ``-m`` it is refused in one line."""
    from conftest import child_runs, run_cli

    synthetic = "study.bias_variance.datasets.synthetic"
    small = [
        "~study.bias_variance.datasets.digits",
        f"~{synthetic}.strengths.l1",
        f"{synthetic}.strengths.l2=[1.0]",
        f"{synthetic}.replicates=2",
        f"{synthetic}.seeds=1",
        "study.bias_variance.draws=5",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
    ]
    done = run_cli(["experiment=bias_variance", *small], output_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (output_dir / "studies" / "bias_variance" / "bias_variance.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("synthetic,l2,1.0")  # the header and one configuration
    runs = child_runs(output_dir)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    sweep = run_cli(["-m", "experiment=bias_variance", *small], output_dir / "sweep")
    assert sweep.returncode == 2
    assert sweep.stderr.strip().splitlines()[-1] == (
        "reglab: error: experiment=bias_variance is not allowed in a -m sweep: it is a study, which "
        "trains its own grid; run it as python train.py experiment=bias_variance [overrides] "
        "(or scripts/bias_variance.py)"
    )
