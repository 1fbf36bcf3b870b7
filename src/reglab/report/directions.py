"""Which way a metric is better: the one table every part of the report reads.

A metric's direction is read from the last part of its name (``test/support_fpr`` ->
``support_fpr``): lower is better when it ends with one of :data:`LOWER_IS_BETTER` (losses,
errors, false-positive rates, calibration error), higher when it ends with one of
:data:`HIGHER_IS_BETTER`; a name in neither is taken as higher-is-better and the report's
header says so.
"""

from __future__ import annotations

LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "ece", "error", "fpr", "nll", "brier", "seconds")
HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "r2", "auc", "auroc", "precision", "recall", "tpr")


def _leaf(metric: str) -> str:
    return metric.rsplit("/", 1)[-1].lower()


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (see the module docstring)."""
    return _leaf(metric).endswith(LOWER_IS_BETTER)


def known_direction(metric: str) -> bool:
    """Whether ``metric``'s direction comes from the table rather than the default."""
    return _leaf(metric).endswith(LOWER_IS_BETTER + HIGHER_IS_BETTER)


def better_sign(metric: str) -> float:
    """``+1`` when higher is better, ``-1`` when lower is: ``better_sign * difference > 0``
    means the configuration is better than its reference."""
    return -1.0 if lower_is_better(metric) else 1.0


def direction_words(metric: str) -> str:
    """``lower is better`` / ``higher is better`` (with ``, assumed`` for a name not in the table)."""
    words = "lower is better" if lower_is_better(metric) else "higher is better"
    return words if known_direction(metric) else f"{words}, assumed: the name is not in reglab's table"
