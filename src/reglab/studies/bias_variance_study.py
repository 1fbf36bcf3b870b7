"""The bias-variance study: replicated fits of every regularizer and strength, decomposed.

For each data set of the study (``study.bias_variance.datasets`` of ``experiment=bias_variance``),
each regularizer and each of its strengths, ``B`` training sets times ``S`` seeds are trained,
every fit predicting the same held-out points: the test split of ``data.split_seed``.

- Training set ``b`` is ``data.seed=b``: a fresh draw of the training split from the population
  for a source that knows it (``replication = "fresh"``: ``data=synthetic``), else bootstrap
  resample ``b`` of one fixed training split (``data.bootstrap=true``). ``data.seed`` also orders
  the mini-batches, whose variance is therefore counted in the data part.
- Seed ``s`` is ``seed=s``: the initial weights (and dropout masks).

The fits of one regularizer train as stacked fits (:func:`reglab.stacked.api.run_variations`),
each recorded as its own MLflow run. Each fit's predictions on its test split (regression: the
prediction; classification: log class probabilities) are decomposed by
:mod:`reglab.studies.bias_variance`, with bootstrap standard errors over the training sets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from reglab import checks
from reglab.errors import ConfigError
from reglab.studies import bias_variance as bv

log = logging.getLogger("reglab")

SQUARED, ZERO_ONE, CROSS_ENTROPY = "squared", "zero_one", "cross_entropy"
COMPONENTS = (
    "error",
    "bias",
    "variance",
    "variance_data",
    "variance_init",
    "variance_unbiased",
    "variance_biased",
    "measured",
)
DATASET_KEYS = {"overrides", "strengths", "replicates", "seeds"}
NOISE_KNOWN = "known: sigma^2 of the simulated design"
NOISE_ESTIMATED = "estimated: nearest-neighbour differences of the held-out targets (an upper estimate)"
NOISE_ZERO = "taken as 0: the observed label is the optimal prediction"


@dataclass
class Study:
    """What the study runs (``study.bias_variance``): ``replicates`` training sets, ``seeds``
    seeds, the held-out points of ``split_seed``, ``draws`` bootstrap resamples for the standard
    errors, stacks of at most ``max_members``; per data set its ``overrides``, each regularizer's
    ``strengths`` and, where they differ from the study's, its own ``replicates`` and ``seeds``."""

    replicates: int
    seeds: int
    split_seed: int = 0
    draws: int = 200
    max_members: int = 256
    datasets: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        key = "study.bias_variance"
        self.replicates = checks.integer(f"{key}.replicates", self.replicates, low=2)
        self.seeds = checks.integer(f"{key}.seeds", self.seeds, low=1)
        self.split_seed = checks.integer(f"{key}.split_seed", self.split_seed)
        self.draws = checks.integer(f"{key}.draws", self.draws, low=2)
        self.max_members = checks.integer(f"{key}.max_members", self.max_members, low=1)
        for name, spec in self.datasets.items():
            where = f"{key}.datasets.{name}"
            unknown, missing = set(spec) - DATASET_KEYS, {"overrides", "strengths"} - set(spec)
            problems = [
                f"{what} keys {sorted(keys)}"
                for what, keys in (("unknown", unknown), ("missing", missing))
                if keys
            ]
            if problems:
                raise ConfigError(f"{where}: {' and '.join(problems)}; allowed: {sorted(DATASET_KEYS)}")
            if not spec["strengths"] or not all(spec["strengths"].values()):
                raise checks.refuse(
                    f"{where}.strengths", spec["strengths"], "a list of strengths per regularizer"
                )


@dataclass
class Predictions:
    """The test predictions of one regularizer and strength: ``values`` of shape ``(B, S, n)``
    (regression) or ``(B, S, n, C)`` log probabilities, the test ``targets`` (labels, or the
    noise-free / observed regression targets), ``noise`` (sigma^2 or its estimate) and the fits'
    own test ``metrics`` (``(B, S)`` each); ``failed`` fits leave ``values`` None."""

    task: str
    values: np.ndarray | None
    targets: np.ndarray
    metrics: dict[str, np.ndarray]
    noise: float = 0.0
    noise_source: str = NOISE_ZERO
    observed: bool = False  # regression targets observed (noisy), not noise-free
    failed: int = 0


def variations(study: Study, strength: float, bootstrap: bool) -> list[dict]:
    """The fits of one strength, training set major: ``seed``, ``data.seed``, ``data.split_seed``
    (and ``data.bootstrap``) per fit."""
    fits = []
    for replicate in range(study.replicates):
        for seed in range(study.seeds):
            fit = {
                "seed": seed,
                "data.seed": replicate,
                "data.split_seed": study.split_seed,
                "regularizer.strength": float(strength),
            }
            if bootstrap:
                fit["data.bootstrap"] = True
            fits.append(fit)
    return fits


def draws_fresh(overrides: Sequence[str]) -> bool:
    """Whether the data of ``overrides`` draws fresh samples per seed (``replication = "fresh"``)
    rather than re-splitting one set."""
    from hydra.utils import get_class

    from reglab.config import compose

    return getattr(get_class(compose(list(overrides)).data._target_), "replication", "") == "fresh"


def predict(result) -> tuple[np.ndarray, np.ndarray]:
    """A fit's predictions on its test split (regression: ``(n,)``; classification: ``(n, C)``
    log probabilities) and the split's targets, from the returned model."""
    import torch

    data = result.data
    x, y = data.tensors["test"]
    model = result.model.eval()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        output = model(x.to(dtype)).double()
    if data.task == "classification":
        return torch.log_softmax(output, dim=-1).numpy(), y.numpy()
    target = data.clean_targets.get("test", y)
    return output.reshape(-1).numpy(), target.double().reshape(-1).numpy()


def noise_of(data) -> tuple[float, str, bool]:
    """``(noise, source, observed)``: sigma^2 of a simulated regression design (targets
    noise-free), else an estimate from the held-out points (targets observed)."""
    from reglab.data.synthetic import SyntheticDataModule

    if isinstance(data, SyntheticDataModule) and "test" in data.clean_targets:
        return float(data.settings["sigma"]) ** 2, NOISE_KNOWN, False
    xs, ys = zip(*(data.tensors[s] for s in ("val", "test")), strict=True)
    x, y = (np.concatenate([t.double().numpy() for t in part]) for part in (xs, ys))
    return bv.nearest_neighbour_noise(x, y), NOISE_ESTIMATED, True


def collect(results: list, study: Study) -> Predictions:
    """One strength's fits (training set major, as :func:`variations`) as :class:`Predictions`."""
    shape = (study.replicates, study.seeds)
    failed = sum(not r.metrics for r in results)
    first = next((r for r in results if r.metrics), results[0])
    task = first.data.task
    names = ("test/mse",) if task == "regression" else ("test/acc", "test/loss")
    metrics = {n: np.array([r.metrics.get(n, np.nan) for r in results]).reshape(shape) for n in names}
    outputs, targets = predict(first)
    values = None if failed else np.stack([predict(r)[0] for r in results]).reshape(*shape, *outputs.shape)
    if task == "classification":
        return Predictions(task, values, targets, metrics, failed=failed)
    return Predictions(task, values, targets, metrics, *noise_of(first.data), failed=failed)


def decompose(predictions: Predictions, draws: int) -> dict[str, dict[str, float]]:
    """Per loss (squared; or 0-1 and cross-entropy) the components and their standard errors
    (``<component>_se``); ``measured`` is the mean of the fits' own test metric (test/mse,
    1 - test/acc, test/loss)."""
    p = predictions
    if p.values is None:  # a failed fit: no decomposition, the rows say how many failed
        return {loss: {} for loss in ((SQUARED,) if p.task == "regression" else (ZERO_ONE, CROSS_ENTROPY))}
    if p.task == "regression":

        def squared(values, mse):
            return {**bv.squared_loss(values, p.targets, p.noise, p.observed), "measured": float(mse.mean())}

        parts = {SQUARED: (squared, [p.values, p.metrics["test/mse"]])}
    else:

        def zero_one(values, acc):
            return {**bv.zero_one_loss(values.argmax(axis=-1), p.targets), "measured": float(1 - acc.mean())}

        def entropy(values, loss):
            return {**bv.cross_entropy(values, p.targets), "measured": float(loss.mean())}

        parts = {
            ZERO_ONE: (zero_one, [p.values, p.metrics["test/acc"]]),
            CROSS_ENTROPY: (entropy, [p.values, p.metrics["test/loss"]]),
        }
    table = {}
    for loss, (function, arrays) in parts.items():
        values = function(*arrays)
        errors = bv.standard_errors(function, arrays, draws)
        table[loss] = {**values, **{f"{k}_se": v for k, v in errors.items()}}
    return table


def run_dataset(name: str, spec: Mapping, study: Study, overrides: Sequence[str] = ()) -> pd.DataFrame:
    """Train and decompose one data set of the study: one row per regularizer, strength and loss,
    with every component of :data:`COMPONENTS` (NaN where it does not apply) and its ``_se``."""
    from reglab.stacked.api import run_variations

    study = replace(study, **{k: spec[k] for k in ("replicates", "seeds") if k in spec})
    base = ["experiment=bias_variance", *spec["overrides"], *overrides]
    bootstrap = not draws_fresh(base)
    rows = []
    for regularizer, strengths in spec["strengths"].items():
        fits = [v for s in strengths for v in variations(study, s, bootstrap)]
        started = time.perf_counter()
        job = [*base, f"regularizer={regularizer}"]
        results = run_variations(job, fits, study.max_members, verbose=False)
        seconds = time.perf_counter() - started
        log.info("%s %s: %d fits in %.0f s", name, regularizer, len(fits), seconds)
        per_strength = len(results) // len(strengths)
        for i, strength in enumerate(strengths):
            predictions = collect(results[i * per_strength : (i + 1) * per_strength], study)
            for loss, values in decompose(predictions, study.draws).items():
                rows.append(
                    {
                        "dataset": name,
                        "regularizer": regularizer,
                        "strength": float(strength),
                        "loss": loss,
                        **{k: values.get(k, np.nan) for c in COMPONENTS for k in (c, f"{c}_se")},
                        "noise": predictions.noise,
                        "noise_source": predictions.noise_source,
                        "training_sets": "fresh draws" if not bootstrap else "bootstrap resamples",
                        "replicates": study.replicates,
                        "seeds": study.seeds,
                        "fits": per_strength,
                        "failed": predictions.failed,
                        "seconds": seconds,
                    }
                )
        del results
    return pd.DataFrame(rows)
