"""Other libraries' regularization parameters in reglab's terms.

reglab minimizes ``data_loss + strength * (l1_ratio * ||w||_1 + 0.5 * (1 - l1_ratio) * ||w||_2^2)``
with ``data_loss`` the *mean* squared error (regression) or the *mean* cross-entropy
(classification) over ``n`` training samples. Each function below returns the
``Penalty`` whose reglab objective has the same minimizer as the other library's:

- sklearn ``Lasso(alpha)``, ``1/(2n) ||y-Xw||^2 + alpha ||w||_1``:
  ``strength = 2 alpha``, ``l1_ratio = 1``
- sklearn ``ElasticNet(alpha, l1_ratio=r)``,
  ``1/(2n) ||y-Xw||^2 + alpha r ||w||_1 + alpha (1-r)/2 ||w||^2``:
  ``strength = 2 alpha``, ``l1_ratio = r``
- sklearn ``Ridge(alpha)``, ``||y-Xw||^2 + alpha ||w||^2``:
  ``strength = 2 alpha / n``, ``l1_ratio = 0``
- sklearn ``LogisticRegression(C, l1_ratio=r)``, ``C sum_i CE_i + r ||w||_1 + (1-r)/2 ||w||^2``:
  ``strength = 1 / (n C)``, ``l1_ratio = r``
- PyTorch ``SGD(weight_decay=d)``, gradient ``g + d w``: ``strength = d``, ``l1_ratio = 0``
- Keras ``L1L2(l1=a, l2=b)``, ``loss + a ||w||_1 + b ||w||^2``:
  ``strength = a + 2b``, ``l1_ratio = a / (a + 2b)``
- textbook ``J + lambda/(2m) sum w^2`` (``J`` a mean over ``m`` samples):
  ``strength = lambda / m``, ``l1_ratio = 0``

The sklearn rows are exact when the intercept is not penalized (``include_bias: false``),
both fit the same (standardized) training split, and reglab is run to convergence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Penalty:
    """reglab's ``regularizer.strength`` and ``regularizer.l1_ratio``."""

    strength: float
    l1_ratio: float


def from_sklearn_lasso(alpha: float) -> Penalty:
    return Penalty(2.0 * alpha, 1.0)


def from_sklearn_elastic_net(alpha: float, l1_ratio: float) -> Penalty:
    return Penalty(2.0 * alpha, l1_ratio)


def from_sklearn_ridge(alpha: float, n_samples: int) -> Penalty:
    return Penalty(2.0 * alpha / n_samples, 0.0)


def from_sklearn_logistic(C: float, n_samples: int, l1_ratio: float = 0.0, *, n_classes: int) -> Penalty:  # noqa: N803
    """``l1_ratio`` 0 is sklearn's L2 penalty, 1 its L1 penalty.

    With ``n_classes > 2`` both fit one weight row per class: ``strength = 1/(n*C)``.
    With two classes sklearn fits one vector ``beta`` (``coef_``) while reglab fits two rows
    ``W0, W1`` whose softmax depends on ``beta = W1 - W0`` only; the penalty is smallest at
    ``W1 = -W0 = beta/2``, where ``||W||_1 = ||beta||_1`` and ``||W||^2 = ||beta||^2 / 2``. So
    reglab's penalty is ``s*rho*||beta||_1 + s*(1-rho)/4*||beta||^2`` and matching sklearn's
    ``(r*||beta||_1 + (1-r)/2*||beta||^2) / (n*C)`` gives ``s = (2-r)/(n*C)``,
    ``rho = r/(2-r)``: twice the multiclass strength for L2, the same for L1. Compare
    sklearn's ``coef_[0]`` with ``W1 - W0``.
    """
    if n_classes == 2:
        return Penalty((2.0 - l1_ratio) / (n_samples * C), l1_ratio / (2.0 - l1_ratio))
    return Penalty(1.0 / (n_samples * C), l1_ratio)


def from_sgd_weight_decay(weight_decay: float) -> Penalty:
    return Penalty(weight_decay, 0.0)


def from_keras_l1l2(l1: float, l2: float) -> Penalty:
    strength = l1 + 2.0 * l2
    return Penalty(strength, l1 / strength if strength > 0 else 0.0)


def from_textbook_l2(lam: float, m: int) -> Penalty:
    return Penalty(lam / m, 0.0)
