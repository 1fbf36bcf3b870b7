"""How well a linear regression model recovers a known design (``data=synthetic``).

For a design ``y = x @ b + sigma * noise`` with ``x ~ N(0, V)`` the data module knows ``b``
(``coef``) and ``V`` (``covariance``). From the fitted coefficients ``b_hat``, in the units of
the raw features (undoing reglab's feature and target standardization):

- ``test/population_model_error = (b_hat - b)^T V (b_hat - b)``: the expected squared error
  of the prediction against the noise-free target on a new sample (Tibshirani 1996; Zou &
  Hastie 2005, who report its median over replicates);
- ``test/support_tpr``: the share of the truly non-zero coefficients that ``b_hat`` keeps
  non-zero; ``test/support_fpr``: the share of the truly zero ones it makes non-zero (exact
  zeros come from proximal steps, docs/penalties.md, "Penalty or proximal step").
"""

from __future__ import annotations

import numpy as np
from torch import nn

from reglab.models import LinearModel, TargetScale


def linear_coefficients(model: nn.Module, datamodule) -> np.ndarray | None:
    """``b_hat`` of a one-output linear model in raw feature and target units; ``None`` for
    any other model."""
    inner = model.net if isinstance(model, TargetScale) else model
    if not isinstance(inner, LinearModel) or inner.out_features != 1:
        return None
    coef = inner.weight.detach().double().cpu().numpy()[0]
    if isinstance(model, TargetScale):
        coef = coef * float(model.std.reshape(-1)[0])
    scale = getattr(datamodule, "feature_scale", None)
    if scale is not None:
        if scale.channels is not None:
            return None
        coef = coef / scale.std
    return coef


def design_recovery(model: nn.Module, datamodule) -> dict[str, float]:
    """The metrics of the module docstring; empty when the design or the model does not
    allow them (real data, a network, classification)."""
    truth, covariance = getattr(datamodule, "coef", None), getattr(datamodule, "covariance", None)
    if truth is None or covariance is None or getattr(datamodule, "task", "") != "regression":
        return {}
    estimate = linear_coefficients(model, datamodule)
    if estimate is None or estimate.shape != np.shape(truth):
        return {}
    difference = estimate - truth
    metrics = {"test/population_model_error": float(difference @ covariance @ difference)}
    relevant, kept = truth != 0, estimate != 0
    if relevant.any():
        metrics["test/support_tpr"] = float(kept[relevant].mean())
    if (~relevant).any():
        metrics["test/support_fpr"] = float(kept[~relevant].mean())
    return metrics
