"""The article's claims as experiments: what each trains, the tuned selection and the differences.

A claim (``study.article.claims.<name>`` of ``experiment=article``) trains, in each of its
``contexts`` (default: one), each of its ``arms`` at every point of the arm's ``grid`` (the product
of its keys' values) on seeds ``0 .. seeds - 1``: the overrides of fit ``(context, arm, point,
seed)`` are ``overrides + contexts[context] + arms[arm].overrides + point + [seed=s]``. All fits of
a claim go to :func:`reglab.stacked.api.run_stacked` together, so those that share an
architecture train as one stacked fit; each is an MLflow run.

**Tuned where strength matters.** An arm with ``select: validation`` (the default) is represented
on each seed by its grid point whose fit scored best on validation (``fit/selection_score``, the
monitor that chose the tested weights, with its mode: the report's rule,
:mod:`reglab.report.tuning`); test metrics are read there, never selected on test. Every arm of a
claim gets a grid of the same size where it has a knob to tune. An arm with ``select: all``
keeps its whole grid (the learning-rate grid of the batch-norm claim), for quantities read
across it. A fit that FAILED is never selected; where every candidate of a seed failed, the arm
has no value on that seed.

Then :mod:`reglab.studies.article` measures each prediction's quantity and decides.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reglab import checks
from reglab.errors import ConfigError
from reglab.report import decisions
from reglab.studies import article
from reglab.studies import bias_variance as bv

log = logging.getLogger("reglab")

CLAIM_KEYS = {"claim", "experiment", "seeds", "overrides", "contexts", "arms", "predictions"}
ARM_KEYS = {"overrides", "grid", "select"}
PREDICTION_KEYS = {"quantity", "treatment", "reference", "expect", "margin", "context"}
SELECT = ("validation", "all")
PER_FIT = ("exact_zeros", "ratio_spread", "support_f1", "groups_whole")
PER_GRID = ("largest_lr", "grid_acc")
POOLED = ("variance", "bias")


def _keys(where: str, spec: Mapping, allowed: set[str], required: set[str]) -> None:
    unknown, missing = set(spec) - allowed, required - set(spec)
    problems = [
        f"{what} keys {sorted(keys)}" for what, keys in (("unknown", unknown), ("missing", missing)) if keys
    ]
    if problems:
        raise ConfigError(f"{where}: {' and '.join(problems)}; allowed: {sorted(allowed)}")


@dataclass
class Arm:
    """One arm of a claim: its ``overrides``, a ``grid`` of values tried per seed and how a seed's
    grid is read (``validation``: its best point; ``all``: every point)."""

    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)
    select: str = "validation"

    def points(self) -> list[list[str]]:
        """The grid's points as overrides, in product order (``[[]]`` without a grid)."""
        keys = list(self.grid)
        return [
            [f"{k}={v}" for k, v in zip(keys, values, strict=True)]
            for values in itertools.product(*self.grid.values())
        ]


@dataclass
class Claim:
    """One claim of the article and the experiment that tests it (see the module docstring)."""

    name: str
    claim: str
    experiment: str
    seeds: int
    overrides: list[str]
    arms: dict[str, Arm]
    predictions: list[article.Prediction]
    contexts: dict[str, list[str]] = field(default_factory=lambda: {"": []})

    @classmethod
    def from_spec(cls, name: str, spec: Mapping, seeds: int) -> Claim:
        where = f"study.article.claims.{name}"
        _keys(where, spec, CLAIM_KEYS, {"claim", "experiment", "overrides", "arms", "predictions"})
        arms = {}
        for arm, arm_spec in spec["arms"].items():
            _keys(f"{where}.arms.{arm}", arm_spec, ARM_KEYS, set())
            arms[arm] = Arm(**arm_spec)
            checks.choice(f"{where}.arms.{arm}.select", arms[arm].select, SELECT)
        contexts = dict(spec.get("contexts") or {"": []})
        predictions = [
            _prediction(f"{where}.predictions[{i}]", name, p, arms, contexts)
            for i, p in enumerate(spec["predictions"])
        ]
        claim_seeds = checks.integer(f"{where}.seeds", spec.get("seeds", seeds), low=2)
        return cls(
            name,
            spec["claim"],
            spec["experiment"],
            claim_seeds,
            list(spec["overrides"]),
            arms,
            predictions,
            contexts,
        )

    def jobs(self) -> list[tuple[tuple[str, str, int, int], list[str]]]:
        """``((context, arm, point, seed), overrides)`` of every fit of the claim."""
        return [
            ((context, arm, p, seed), [*self.overrides, *extra, *spec.overrides, *point, f"seed={seed}"])
            for context, extra in self.contexts.items()
            for arm, spec in self.arms.items()
            for p, point in enumerate(spec.points())
            for seed in range(self.seeds)
        ]


def _prediction(
    where: str, claim: str, spec: Mapping, arms: Mapping, contexts: Mapping
) -> article.Prediction:
    _keys(where, spec, PREDICTION_KEYS, PREDICTION_KEYS - {"context"})
    quantity = spec["quantity"]
    if "/" not in quantity and quantity not in (*PER_FIT, *PER_GRID, *POOLED):
        raise checks.refuse(
            f"{where}.quantity",
            quantity,
            f"a logged metric (test/acc, ...) or one of {', '.join((*PER_FIT, *PER_GRID, *POOLED))}",
        )
    reference = spec["reference"]
    reference = (
        tuple(reference) if isinstance(reference, Sequence) and not isinstance(reference, str) else reference
    )
    checks.choice(f"{where}.treatment", spec["treatment"], list(arms))
    for arm in reference if isinstance(reference, tuple) else (reference,):
        checks.choice(f"{where}.reference", arm, list(arms))
    context = spec.get("context", "")
    for part in context.split(" - ") if context else [""]:
        checks.choice(f"{where}.context", part, list(contexts))
    if quantity in POOLED and (isinstance(reference, tuple) or " - " in context):
        raise checks.refuse(
            f"{where}", f"{quantity} of {reference} in {context!r}", "one reference arm in one context"
        )
    checks.choice(f"{where}.expect", spec["expect"], list(article.EXPECT))
    margin = checks.number(f"{where}.margin", spec["margin"], low=0, low_open=True)
    return article.Prediction(claim, quantity, spec["treatment"], reference, spec["expect"], margin, context)


@dataclass
class Fits:
    """The fits of one claim: ``results[(context, arm, point, seed)]`` and the grids of its arms."""

    claim: Claim
    results: dict[tuple[str, str, int, int], object]

    def grid(self, context: str, arm: str, seed: int) -> list:
        """The arm's fits on ``seed``, in grid order."""
        return [self.results[(context, arm, p, seed)] for p in range(len(self.claim.arms[arm].points()))]

    def chosen(self, context: str, arm: str, seed: int) -> int | None:
        """The grid position of the arm's best validation score on ``seed`` (None: every
        candidate failed)."""
        grid = self.grid(context, arm, seed)
        finished = [p for p, r in enumerate(grid) if r.metrics]
        return min(finished, key=lambda p: _selection_score(grid[p]), default=None)

    def selected(self, context: str, arm: str, seed: int):
        """The fit at :meth:`chosen` (None: every candidate failed)."""
        position = self.chosen(context, arm, seed)
        return None if position is None else self.results[(context, arm, position, seed)]

    def point(self, context: str, arm: str, seed: int) -> str:
        """The selected grid point, as overrides."""
        position = self.chosen(context, arm, seed)
        return "" if position is None else " ".join(self.claim.arms[arm].points()[position])

    def best_of(self, context: str, arms: Sequence[str], seed: int) -> str | None:
        """Of ``arms``, the one whose selected fit scored best on validation on ``seed``."""
        scored = [(a, self.selected(context, a, seed)) for a in arms]
        scored = [(a, r) for a, r in scored if r is not None]
        return min(scored, key=lambda ar: _selection_score(ar[1]))[0] if scored else None

    def failed(self) -> int:
        return sum(not r.metrics for r in self.results.values())

    def ratio(self) -> float:
        """n_test / n_train of seeds that re-split one data set, 0 for fresh draws
        (:func:`reglab.report.decisions.replication`)."""
        metrics = pd.DataFrame([r.metrics for r in self.results.values() if r.metrics])
        return decisions.replication(metrics).ratio


def grid_ends(fits: Fits) -> list[str]:
    """The tuned arms that most seeds selected at the smallest or largest value of a grid key of
    at least three values: the optimum may lie outside the grid (the report's flag)."""
    notes = []
    for context, (name, arm) in itertools.product(fits.claim.contexts, fits.claim.arms.items()):
        if arm.select != "validation":
            continue
        values_at = list(itertools.product(*arm.grid.values()))
        positions = [fits.chosen(context, name, s) for s in range(fits.claim.seeds)]
        positions = [p for p in positions if p is not None]
        for k, (key, values) in enumerate(arm.grid.items()):
            if len(values) < 3:
                continue
            chosen = [values_at[p][k] for p in positions]
            for end, word in ((min(values), "smallest"), (max(values), "largest")):
                count = sum(v == end for v in chosen)
                if count > len(chosen) / 2:
                    where = f" ({context})" if context else ""
                    value = f"the {word} value tried, {end:g}"
                    notes.append(f"{name}{where}: {key} at {value}, on {count} of {len(chosen)} seeds")
    return notes


def _selection_score(result) -> float:
    """``fit/selection_score`` oriented so that lower is better (the best-weights monitor's mode)."""
    score = result.metrics.get("fit/selection_score", math.nan)
    callbacks = result.config.get("callbacks") or {}
    mode = (callbacks.get("best_weights") or {}).get("mode", "min")
    return -score if mode == "max" else score


def coefficients(result) -> np.ndarray:
    from reglab.recovery import linear_coefficients

    coef = linear_coefficients(result.model, result.data)
    if coef is None:
        raise ConfigError(
            f"the quantities {', '.join(PER_FIT)} need model=linear on a regression set, "
            f"got {result.config.model._target_} on {result.data.task}"
        )
    return coef


def per_fit(quantity: str, fits: Fits, context: str, arm: str, seed: int) -> float:
    """``quantity`` of the arm's selected fit (:mod:`reglab.studies.article`); NaN without one."""
    result = fits.selected(context, arm, seed)
    if result is None:
        return math.nan
    if "/" in quantity:
        return float(result.metrics.get(quantity, math.nan))
    coef = coefficients(result)
    if quantity == "exact_zeros":
        return article.exact_zeros(coef)
    if quantity == "support_f1":
        return article.support_f1(coef, result.data.coef)
    if quantity == "groups_whole":
        groups = result.data.correlation
        return article.groups_whole(coef, groups["n_groups"], groups["group_size"])
    unpenalized = fits.selected(context, "none", seed)
    if unpenalized is None:
        return math.nan
    return article.ratio_spread(coef, coefficients(unpenalized), result.data.coef)


def per_grid(quantity: str, fits: Fits, context: str, arm: str, seed: int) -> float:
    """``largest_lr`` or ``grid_acc`` over the arm's grid on ``seed`` (a failed fit: NaN accuracy)."""
    grid = fits.grid(context, arm, seed)
    accuracies = [r.metrics.get("test/acc", math.nan) if r.metrics else math.nan for r in grid]
    if quantity == "grid_acc":
        return article.grid_accuracy(accuracies, len(grid[0].data.classes))
    rates = [float(r.config.optimizer.lr) for r in grid]
    return article.largest_lr(rates, accuracies)


def pooled(quantity: str, fits: Fits, context: str, treatment: str, reference: str, draws: int) -> dict:
    """The squared-loss ``variance`` or ``bias`` (bias^2) of ``treatment`` minus ``reference``,
    each over its seeds' test predictions (every seed a training set, every fit predicting the
    same held-out points), with the bootstrap standard error over the training sets (resampled
    jointly: seed ``b`` is the same training set in both arms)."""
    from reglab.studies.bias_variance_study import noise_of, predict

    arms = [
        [fits.selected(context, arm, s) for s in range(fits.claim.seeds)] for arm in (treatment, reference)
    ]
    if any(r is None for results in arms for r in results):
        return article.test_row([], 0.0)
    arrays = [np.stack([predict(r)[0] for r in results])[:, None, :] for results in arms]
    targets, noise = predict(arms[0][0])[1], noise_of(arms[0][0].data)[0]

    def difference(values_t, values_r):
        return {
            quantity: bv.squared_loss(values_t, targets, noise)[quantity]
            - bv.squared_loss(values_r, targets, noise)[quantity]
        }

    estimate = difference(*arrays)[quantity]
    se = bv.standard_errors(difference, arrays, draws)[quantity]
    return article.estimate_row(estimate, se, fits.claim.seeds)


def differences(prediction: article.Prediction, fits: Fits) -> list[float]:
    """Per seed, ``q(treatment) - q(reference)`` in the prediction's context, or the difference of
    two contexts' differences (``a - b``); seeds without a value are left out."""
    measure = per_grid if prediction.quantity in PER_GRID else per_fit

    def paired(context: str, seed: int) -> float:
        reference = prediction.reference
        if isinstance(reference, tuple):
            reference = fits.best_of(context, reference, seed)
            if reference is None:
                return math.nan
        treated = measure(prediction.quantity, fits, context, prediction.treatment, seed)
        return treated - measure(prediction.quantity, fits, context, reference, seed)

    contexts = prediction.context.split(" - ") if prediction.context else [""]
    values = []
    for seed in range(fits.claim.seeds):
        value = paired(contexts[0], seed) - (paired(contexts[1], seed) if len(contexts) == 2 else 0.0)
        if math.isfinite(value):
            values.append(value)
    return values


def measurements(fits: Fits) -> pd.DataFrame:
    """Per context, arm and seed: the selected grid point and every per-fit and per-grid quantity
    the claim's predictions read (the study's ``measurements.csv``)."""
    quantities = sorted({p.quantity for p in fits.claim.predictions} - set(POOLED))
    rows = []
    for context, arm, seed in itertools.product(
        fits.claim.contexts, fits.claim.arms, range(fits.claim.seeds)
    ):
        row = {"claim": fits.claim.name, "context": context, "arm": arm, "seed": seed}
        row["selected"] = (
            fits.point(context, arm, seed) if fits.claim.arms[arm].select == "validation" else "all"
        )
        for quantity in quantities:
            if quantity == "ratio_spread" and arm == "none":
                continue
            measure = per_grid if quantity in PER_GRID else per_fit
            row[quantity] = measure(quantity, fits, context, arm, seed)
        rows.append(row)
    return pd.DataFrame(rows)


def run_claim(
    claim: Claim, overrides: Sequence[str], max_members: int, draws: int
) -> tuple[list[dict], pd.DataFrame, dict]:
    """Train one claim's fits; return a test row per prediction (:func:`reglab.studies.article.decide`
    reads them), its measurements and ``{fits, failed, seconds, grid_ends}``."""
    from reglab.stacked.api import run_stacked

    started = time.perf_counter()
    jobs = claim.jobs()
    results = run_stacked([[*job, *overrides] for _, job in jobs], max_members, verbose=False)
    fits = Fits(claim, {key: result for (key, _), result in zip(jobs, results, strict=True)})
    ratio = fits.ratio()
    rows = []
    for prediction in claim.predictions:
        if prediction.quantity in POOLED:
            reference = prediction.reference
            rows.append(
                pooled(prediction.quantity, fits, prediction.context, prediction.treatment, reference, draws)
            )
        else:
            rows.append(article.test_row(differences(prediction, fits), ratio))
    seconds = time.perf_counter() - started
    log.info("claim %s: %d fits in %.0f s", claim.name, len(jobs), seconds)
    run = {"fits": len(jobs), "failed": fits.failed(), "seconds": seconds, "grid_ends": grid_ends(fits)}
    return rows, measurements(fits), run
