"""Simulated linear data: the designs of the lasso and elastic-net papers, and your own.

Model (regression)::

    x ~ N(0, Sigma)  (p features),   y = x @ coef + sigma * eps,   eps ~ N(0, 1)

and for classification the same latent value thresholded (a probit model):
``y = 1[x @ coef + sigma * eps > 0]``. The noise-free targets ``x @ coef`` of every
split are kept in ``clean_targets`` (regression), so that the model error
``mean((f(x) - x @ coef)^2) ~= (b - coef)' Sigma (b - coef)`` of a fitted model can be
measured on the test split, as the papers report it.

Feature correlation (``correlation={"kind": ..., ...}``):

- ``none``: ``Sigma = I``;
- ``toeplitz``: ``Sigma_ij = rho^|i-j|`` (``|rho| < 1``);
- ``equal``: ``Sigma_ij = rho`` for ``i != j``, 1 on the diagonal
  (``-1/(p-1) < rho < 1``);
- ``groups``: ``n_groups`` groups of ``group_size`` features driven by a shared latent
  factor, ``x_j = z_g + noise_sd * e_j`` with ``z_g, e_j ~ N(0, 1)`` (within-group
  correlation ``1 / (1 + noise_sd^2)``); the remaining features are independent
  ``N(0, 1)`` (Zou & Hastie 2005, example 4).

Named designs (``design=...``; every key left None takes the design's value):

================  ===================================  ==============  =====  ===========
design            coef                                 correlation     sigma  train/val/test
================  ===================================  ==============  =====  ===========
``tibshirani_1``  (3, 1.5, 0, 0, 2, 0, 0, 0)           toeplitz .5     3      20/20/200
``tibshirani_2``  (0.85 x 8)                           toeplitz .5     3      20/20/200
``tibshirani_3``  (5, 0, 0, 0, 0, 0, 0, 0)             toeplitz .5     2      20/20/200
``zou_hastie_1``  = ``tibshirani_1``                   toeplitz .5     3      20/20/200
``zou_hastie_2``  = ``tibshirani_2``                   toeplitz .5     3      20/20/200
``zou_hastie_3``  (0 x 10, 2 x 10, 0 x 10, 2 x 10)     equal .5        15     100/100/400
``zou_hastie_4``  (3 x 15, 0 x 25)                     groups 3 x 5,   15     50/50/400
                                                       noise_sd .1
================  ===================================  ==============  =====  ===========

Tibshirani (1996), "Regression shrinkage and selection via the lasso", examples 1-3
(20 training observations; the validation and test sizes are those of Zou & Hastie);
Zou & Hastie (2005), "Regularization and variable selection via the elastic net",
section 5, examples 1-4 (``N(0, 0.01)`` within-group noise in example 4 is
``noise_sd = 0.1``).

Without a design the coefficients are ``coef`` (a list, whose length is ``n_features``)
or ``informative_coef`` for the first ``n_informative`` of ``n_features`` features and 0
for the rest. Each split is drawn from its own random stream (seeded by ``seed``), so
changing ``n_test`` does not change the training data.

Replicates with shared held-out points (the bias-variance study, :mod:`reglab.studies`):
``split_seed`` (None: ``seed``) seeds the validation and test draws, so that runs of
different ``seed`` draw fresh training sets and predict the same held-out points; with
``fixed_design`` (which needs ``split_seed``) the training features are ``split_seed``'s too
and ``seed`` draws only the training noise (a stream of its own): a fixed design ``X`` with
resampled noise, as in the textbook ridge formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reglab import checks
from reglab.data import CLASSIFICATION, REGRESSION, TASKS
from reglab.data.in_memory import ArrayDataModule
from reglab.data.splits import ordered_split
from reglab.errors import ConfigError, DataError

CORRELATIONS = ("none", "toeplitz", "equal", "groups")
_CORRELATION_KEYS = {
    "none": {"kind"},
    "toeplitz": {"kind", "rho"},
    "equal": {"kind", "rho"},
    "groups": {"kind", "n_groups", "group_size", "noise_sd"},
}

_TOEPLITZ_HALF = {"kind": "toeplitz", "rho": 0.5}
_SMALL = {"n_train": 20, "n_val": 20, "n_test": 200}

DESIGNS: dict[str, dict[str, Any]] = {
    "tibshirani_1": {
        "coef": [3, 1.5, 0, 0, 2, 0, 0, 0],
        "correlation": _TOEPLITZ_HALF,
        "sigma": 3.0,
        **_SMALL,
    },
    "tibshirani_2": {"coef": [0.85] * 8, "correlation": _TOEPLITZ_HALF, "sigma": 3.0, **_SMALL},
    "tibshirani_3": {"coef": [5, 0, 0, 0, 0, 0, 0, 0], "correlation": _TOEPLITZ_HALF, "sigma": 2.0, **_SMALL},
    "zou_hastie_3": {
        "coef": [0] * 10 + [2] * 10 + [0] * 10 + [2] * 10,
        "correlation": {"kind": "equal", "rho": 0.5},
        "sigma": 15.0,
        "n_train": 100,
        "n_val": 100,
        "n_test": 400,
    },
    "zou_hastie_4": {
        "coef": [3] * 15 + [0] * 25,
        "correlation": {"kind": "groups", "n_groups": 3, "group_size": 5, "noise_sd": 0.1},
        "sigma": 15.0,
        "n_train": 50,
        "n_val": 50,
        "n_test": 400,
    },
}
DESIGNS["zou_hastie_1"] = DESIGNS["tibshirani_1"]
DESIGNS["zou_hastie_2"] = DESIGNS["tibshirani_2"]

GENERIC = {
    "n_train": 100,
    "n_val": 100,
    "n_test": 1000,
    "n_features": 20,
    "n_informative": 5,
    "informative_coef": 1.0,
    "correlation": {"kind": "none"},
    "sigma": 1.0,
}


def covariance(n_features: int, correlation: Mapping[str, Any]) -> np.ndarray:
    """The population covariance ``Sigma`` of the features (see the module docstring)."""
    spec = check_correlation(correlation, n_features)
    kind, p = spec["kind"], n_features
    if kind == "none":
        return np.eye(p)
    if kind == "toeplitz":
        distance = np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
        return spec["rho"] ** distance
    if kind == "equal":
        return np.full((p, p), spec["rho"]) + (1 - spec["rho"]) * np.eye(p)
    sigma = np.eye(p)
    size = spec["group_size"]
    for g in range(spec["n_groups"]):
        block = slice(g * size, (g + 1) * size)
        sigma[block, block] = 1.0 + spec["noise_sd"] ** 2 * np.eye(size)
    return sigma


def check_correlation(correlation: Mapping[str, Any] | None, n_features: int) -> dict[str, Any]:
    """``correlation`` as a plain dict with its defaults, or a :class:`DataError` saying
    what is wrong."""
    spec = dict(correlation or {"kind": "none"})
    kind = spec.get("kind", "none")
    if kind not in CORRELATIONS:
        raise DataError(f"data.correlation.kind={kind!r} is not allowed: must be one of {list(CORRELATIONS)}")
    spec["kind"] = kind
    unknown = set(spec) - _CORRELATION_KEYS[kind]
    if unknown:
        raise DataError(
            f"data.correlation keys {sorted(unknown)} do not apply to kind {kind!r}; "
            f"allowed: {sorted(_CORRELATION_KEYS[kind])}"
        )
    p = n_features
    if kind in ("toeplitz", "equal"):
        if "rho" not in spec:
            raise DataError(f"data.correlation.rho is required for kind {kind!r}")
        rho = float(spec["rho"])
        low = -1.0 if kind == "toeplitz" else -1.0 / max(p - 1, 1)
        if not low < rho < 1:
            raise DataError(
                f"data.correlation.rho={rho} is not allowed for kind {kind!r} with {p} features: "
                f"must be in ({low:.4g}, 1) for a positive definite covariance"
            )
        spec["rho"] = rho
    if kind == "groups":
        spec.setdefault("noise_sd", 0.1)
        for key in ("n_groups", "group_size"):
            if not isinstance(spec.get(key), int) or spec[key] < 1:
                raise DataError(f"data.correlation.{key} must be a positive integer for kind 'groups'")
        if spec["n_groups"] * spec["group_size"] > p:
            raise DataError(
                f"data.correlation: {spec['n_groups']} groups of {spec['group_size']} features "
                f"need n_features >= {spec['n_groups'] * spec['group_size']}, got {p}"
            )
        if not float(spec["noise_sd"]) > 0:
            raise DataError("data.correlation.noise_sd must be > 0")
        spec["noise_sd"] = float(spec["noise_sd"])
    return spec


def sample_features(
    n: int, n_features: int, correlation: Mapping[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """``n`` draws of ``x ~ N(0, Sigma)``; grouped features from their latent factors."""
    spec = check_correlation(correlation, n_features)
    if spec["kind"] == "groups":
        x = rng.standard_normal((n, n_features))
        size = spec["group_size"]
        latent = rng.standard_normal((n, spec["n_groups"]))
        grouped = spec["n_groups"] * size
        x[:, :grouped] = np.repeat(latent, size, axis=1) + spec["noise_sd"] * x[:, :grouped]
        return x
    root = np.linalg.cholesky(covariance(n_features, spec))
    return rng.standard_normal((n, n_features)) @ root.T


class SyntheticDataModule(ArrayDataModule):
    """Simulated linear regression / probit classification; see the module docstring.

    Splits have the exact sizes ``n_train`` / ``n_val`` / ``n_test``. After
    :meth:`setup`, ``coef`` and ``covariance`` hold the true coefficients and ``Sigma``.
    """

    replication = "fresh"  # every split drawn anew from the design's population per seed

    def __init__(
        self,
        design: str | None = None,
        task: str = REGRESSION,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        n_features: int | None = None,
        n_informative: int | None = None,
        informative_coef: float | None = None,
        coef: Sequence[float] | None = None,
        correlation: Mapping[str, Any] | None = None,
        sigma: float | None = None,
        split_seed: int | None = None,
        fixed_design: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(val_fraction=0.0, test_fraction=0.0, split_seed=split_seed, **kwargs)
        self.fixed_design = checks.flag("data.fixed_design", fixed_design)
        if self.fixed_design and split_seed is None:
            raise ConfigError(
                "data.fixed_design=true needs data.split_seed: the seed of the fixed training "
                "features (and of the held-out draws)"
            )
        if design is not None:
            checks.choice("data.design", design, [*sorted(DESIGNS), None])
        checks.choice("data.task", task, TASKS)
        if coef is not None and n_informative is not None:
            raise ConfigError("data.coef and data.n_informative are both set: give one of them, not both")
        settings = dict(GENERIC)
        if design is not None:
            settings.update(DESIGNS[design])
            settings["n_features"] = len(settings["coef"])
        given = {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "n_features": n_features,
            "n_informative": n_informative,
            "informative_coef": informative_coef,
            "correlation": correlation,
            "sigma": sigma,
        }
        settings.update({k: v for k, v in given.items() if v is not None})
        if coef is not None:
            if n_features is not None and n_features != len(coef):
                raise ConfigError(f"data.coef has {len(coef)} entries but data.n_features={n_features}")
            settings["coef"] = [float(c) for c in coef]
        elif n_features is not None or n_informative is not None:
            settings.pop("coef", None)  # a design's coef gives way to n_features / n_informative
        self.coef = self._coefficients(settings)
        self.p = len(self.coef)
        settings["n_features"] = self.p
        self.design = design
        self.task_name = task
        self.settings = settings
        for key, least in (("n_train", 1), ("n_val", 0), ("n_test", 0)):
            settings[key] = checks.integer(f"data.{key}", settings[key], low=least)
        settings["sigma"] = checks.number("data.sigma", settings["sigma"], low=0)
        self.correlation = check_correlation(settings["correlation"], self.p)
        self.covariance = covariance(self.p, self.correlation)
        self._clean: np.ndarray | None = None

    @staticmethod
    def _coefficients(settings: dict[str, Any]) -> np.ndarray:
        """The design's / the given ``coef``, else ``informative_coef`` on the first
        ``n_informative`` of ``n_features`` features."""
        if "coef" in settings:
            coef = np.asarray(settings["coef"], dtype=np.float64)
            if coef.ndim != 1 or len(coef) == 0:
                raise checks.refuse("data.coef", coef.tolist(), "a non-empty list of numbers")
            return coef
        p, k = int(settings["n_features"]), int(settings["n_informative"])
        checks.integer("data.n_features", p, low=1)
        checks.integer("data.n_informative", k, low=0)
        if k > p:
            raise ConfigError(f"data.n_informative={k} is not allowed: must be <= data.n_features={p}")
        coef = np.zeros(p)
        coef[:k] = float(settings["informative_coef"])
        return coef

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        s = self.settings
        xs, clean, noisy = [], [], []
        sizes = (s["n_train"], s["n_val"], s["n_test"])
        for n, (features, noise) in zip(sizes, self._streams(), strict=True):
            x = sample_features(int(n), self.p, self.correlation, features)
            signal = x @ self.coef
            xs.append(x)
            clean.append(signal)
            noisy.append(signal + float(s["sigma"]) * noise.standard_normal(int(n)))
        x, signal, latent = np.concatenate(xs), np.concatenate(clean), np.concatenate(noisy)
        self.feature_names = [f"x{j + 1}" for j in range(self.p)]
        self.source = f"synthetic design {self.design}" if self.design else "synthetic data"
        if self.task_name == CLASSIFICATION:
            self._clean = None
            return x, (latent > 0).astype(np.int64), CLASSIFICATION
        self._clean = signal
        return x, latent, REGRESSION

    def _streams(self) -> list[tuple[np.random.Generator, np.random.Generator]]:
        """The generators of ``(features, noise)`` per split (train, val, test): one per split,
        shared by its features and noise; the training split's from ``seed``, the held-out ones'
        from ``split_seed``; with ``fixed_design`` the training features from ``split_seed``
        and their noise from a child stream of ``seed``'s."""
        own = np.random.SeedSequence(self.seed).spawn(3)
        held = np.random.SeedSequence(self.split_seed).spawn(3)
        if self.fixed_design:
            train = (np.random.default_rng(held[0]), np.random.default_rng(own[0].spawn(1)[0]))
        else:
            train = (np.random.default_rng(own[0]),) * 2
        return [train, *((np.random.default_rng(stream),) * 2 for stream in held[1:])]

    def split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.settings
        return ordered_split([int(s["n_train"]), int(s["n_val"]), int(s["n_test"])])

    def noise_free_targets(self) -> np.ndarray | None:
        return self._clean
