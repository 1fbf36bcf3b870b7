"""The article's claims measured: what each experiment's fits show, and the verdicts.

**Measured quantities** (:data:`QUANTITIES`), per fit of one context, arm and seed:

- a logged metric by its name (``test/acc``, ``test/loss``, ``gap/loss``,
  ``test/population_model_error`` = ``(b_hat - b)' Sigma (b_hat - b)``, ...);
- ``exact_zeros``: the share of a linear model's coefficients that are exactly 0;
- ``ratio_spread``: with ``r_j = |w_j| / |w0_j|`` the shrinkage of coefficient ``j`` against the
  unpenalized fit ``w0`` of the same seed (arm ``none``), over the true support (``b_j != 0``,
  where ``|w0_j|`` is far from 0: a ratio over a coefficient the unpenalized fit puts near 0 is
  noise over noise), the coefficient of variation ``sd(r) / mean(r)`` (``ddof = 0``).
  Proportional shrinkage (ridge on an orthonormal design: ``r_j = 1 / (1 + s / 2)`` for every
  ``j``) gives 0; soft-thresholding (``r_j = (1 - t / |w0_j|)_+``) spreads the ratios, the smaller
  coefficients shrunk relatively more;
- ``support_f1``: the F1 score of the selected coefficients (``b_hat_j != 0``) against the true
  support (``b_j != 0``), ``2 TP / (2 TP + FP + FN)``;
- ``groups_whole``: of the design's correlated groups (``correlation.kind = groups``), the share
  whose members are all selected (all non-zero) or all dropped together;
- ``largest_lr`` (over an arm's learning-rate grid): ``log10`` of the largest rate whose fit
  trains, i.e. FINISHED (not diverged) with ``test/acc >= TRAINS``; ``log10`` of the smallest
  rate divided by 10 when none does;
- ``grid_acc`` (over an arm's grid): the mean ``test/acc``, a fit that diverged counted at
  chance (``1 / classes``);
- ``variance``, ``bias`` (pooled over an arm's seeds, each seed a fresh training set): the
  squared-loss variance and bias^2 of :func:`reglab.studies.bias_variance.squared_loss`.

**Differences**: a prediction compares arm ``treatment`` with arm ``reference`` on the same seed,
``d_s = q(treatment, s) - q(reference, s)`` (a list of reference arms: the one of them whose
selected fit scored best on validation on that seed: "the best single one"); within context
``c``, or for ``c1 - c2`` the difference of the two contexts' differences (an interaction). A
pooled quantity gives one estimate of ``q(treatment) - q(reference)`` and its bootstrap standard
error over the training sets, resampled jointly for both arms (they share training set ``b``).

**Verdicts** are the report's decision rule (:mod:`reglab.report.decisions`) with the prediction's
direction in place of the metric's: the differences are oriented so that the predicted direction
is positive; every prediction of the study is one family, Holm-adjusted; the interval has the
Holm-consistent level; a prediction is *supported* when its interval excludes 0 in the predicted
direction, *contradicted* when it excludes 0 in the other, else *inconclusive*, with the seeds a
test at the family's first Holm level needs to detect a true difference of ``margin`` (the
smallest effect the prediction cares about, stated with it) with power 0.8. Seeds that re-split
one data set take the corrected resampled t; fresh draws the paired t. A claim is supported
when all its predictions are, contradicted when any is, else inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reglab.report import decisions

TRAINS = 0.5  # test/acc at which a fit of the learning-rate grid counts as trained
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
EXPECT = {"higher": 1.0, "lower": -1.0}
# the name the oriented differences are decided under: higher is better for a name outside
# reglab.report.directions' table, so "better" reads "in the predicted direction"
ORIENTED = "predicted_direction"


def exact_zeros(coef: np.ndarray) -> float:
    """The share of coefficients exactly 0."""
    return float(np.mean(np.asarray(coef) == 0))


def ratio_spread(coef: np.ndarray, unpenalized: np.ndarray, truth: np.ndarray) -> float:
    """``sd(r) / mean(r)`` of ``r_j = |coef_j| / |unpenalized_j|`` over ``truth_j != 0`` (and
    ``unpenalized_j != 0``)."""
    base = np.abs(np.asarray(unpenalized, dtype=float))
    kept = (base != 0) & (np.asarray(truth) != 0)
    ratios = np.abs(np.asarray(coef, dtype=float))[kept] / base[kept]
    return float(ratios.std() / ratios.mean()) if ratios.mean() > 0 else math.nan


def support_f1(coef: np.ndarray, truth: np.ndarray) -> float:
    """``2 TP / (2 TP + FP + FN)`` of ``coef != 0`` against ``truth != 0``."""
    selected, relevant = np.asarray(coef) != 0, np.asarray(truth) != 0
    true_positive = int((selected & relevant).sum())
    wrong = int((selected != relevant).sum())
    return 2 * true_positive / (2 * true_positive + wrong) if true_positive or wrong else 1.0


def groups_whole(coef: np.ndarray, n_groups: int, group_size: int) -> float:
    """Of the ``n_groups`` groups of ``group_size`` consecutive coefficients (the first ones), the
    share selected or dropped as a whole: every member non-zero, or every member 0."""
    selected = (np.asarray(coef)[: n_groups * group_size] != 0).reshape(n_groups, group_size)
    return float(np.mean(selected.all(axis=1) | ~selected.any(axis=1)))


def largest_lr(rates: Sequence[float], accuracies: Sequence[float]) -> float:
    """``log10`` of the largest rate whose accuracy (NaN: diverged) is at least :data:`TRAINS`;
    ``log10(min(rates) / 10)`` when none is."""
    trained = [r for r, a in zip(rates, accuracies, strict=True) if a >= TRAINS]
    return math.log10(max(trained) if trained else min(rates) / 10)


def grid_accuracy(accuracies: Sequence[float], classes: int) -> float:
    """Mean accuracy over a grid, a diverged fit (NaN) counted at chance ``1 / classes``."""
    values = np.asarray(accuracies, dtype=float)
    return float(np.where(np.isnan(values), 1 / classes, values).mean())


@dataclass(frozen=True)
class Prediction:
    """One measurable prediction of a claim: ``quantity`` of arm ``treatment`` minus that of
    ``reference`` (one arm, or several: the best of them on validation per seed) in
    ``context`` (``a - b``: the difference of two contexts' differences) is ``expect``
    (higher: > 0, lower: < 0); ``margin`` is the smallest difference the claim cares about."""

    claim: str
    quantity: str
    treatment: str
    reference: str | tuple[str, ...]
    expect: str
    margin: float
    context: str = ""

    def describe(self) -> str:
        reference = " / ".join(self.reference) if isinstance(self.reference, tuple) else self.reference
        best = "best of " if isinstance(self.reference, tuple) else ""
        where = f" ({self.context})" if self.context else ""
        return f"{self.quantity}: {self.treatment} - {best}{reference}{where} {self.expect_sign()} 0"

    def expect_sign(self) -> str:
        return ">" if self.expect == "higher" else "<"


def test_row(differences: Sequence[float], ratio: float) -> dict:
    """:func:`~reglab.report.decisions.test_differences` of per-seed differences, with ``ratio``."""
    return decisions.test_differences(differences, ratio) | {"ratio": ratio}


def estimate_row(estimate: float, se: float, n: int) -> dict:
    """The same columns for a pooled estimate with a bootstrap standard error over ``n`` training
    sets: ``t = estimate / se`` with ``n - 1`` degrees of freedom, and the per-set
    ``sd = se sqrt(n)`` that seeds needed reads."""
    from scipy import stats

    p = float(2 * stats.t.sf(abs(estimate) / se, n - 1)) if se > 0 else float(estimate == 0)
    return {
        "n": n,
        "mean_difference": estimate,
        "sd": se * math.sqrt(n),
        "se": se,
        "df": n - 1,
        "p": p,
        "ratio": 0.0,
    }


def decide(
    predictions: Sequence[Prediction], rows: Sequence[dict], alpha: float = decisions.ALPHA
) -> pd.DataFrame:
    """One row per prediction: its difference (``mean_difference``, ``ci_low``, ``ci_high`` at
    ``ci_level``, in the quantity's units), ``p``, ``p_holm``, ``verdict`` and
    ``seeds_needed`` (module docstring); ``rows`` from :func:`test_row` / :func:`estimate_row`."""
    signs = np.array([EXPECT[p.expect] for p in predictions])
    table = pd.DataFrame(list(rows))
    oriented = table.assign(mean_difference=table.mean_difference * signs, in_family=table.n >= 2)
    oriented["p_equivalence"] = math.nan
    decided = decisions.decide(oriented, ORIENTED)
    low = np.where(signs > 0, decided.ci_low, -decided.ci_high)
    high = np.where(signs > 0, decided.ci_high, -decided.ci_low)
    family = max(int(oriented.in_family.sum()), 1)
    verdicts = [
        {1: SUPPORTED, -1: CONTRADICTED}.get(decisions.is_clear(v), INCONCLUSIVE) for v in decided.verdict
    ]
    needed = [
        decisions.seeds_needed(r.sd, r.ratio, p.margin, alpha / family) if v == INCONCLUSIVE else math.nan
        for r, p, v in zip(table.itertuples(), predictions, verdicts, strict=True)
    ]
    return pd.DataFrame(
        {
            "claim": [p.claim for p in predictions],
            "prediction": [p.describe() for p in predictions],
            "margin": [p.margin for p in predictions],
            "n": table.n,
            "mean_difference": table.mean_difference,
            "ci_low": low,
            "ci_high": high,
            "ci_level": decided.ci_level,
            "p": table.p,
            "p_holm": decided.p_holm,
            "method": [decisions.CORRECTED_T if r > 0 else decisions.PAIRED_T for r in table.ratio],
            "verdict": verdicts,
            "seeds_needed": needed,
        }
    )


def claim_verdict(verdicts: Sequence[str]) -> str:
    """Supported when every prediction is, contradicted when any is, else inconclusive."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return SUPPORTED if all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE
