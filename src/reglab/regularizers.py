"""Weight penalties added to the data loss.

Convention (scikit-learn / glmnet): for the selected weights ``w``::

    penalty(w) = strength * (l1_ratio * ||w||_1 + 0.5 * (1 - l1_ratio) * ||w||_2^2)

``L1`` is ``l1_ratio = 1``; ``L2`` is ``l1_ratio = 0``, whose gradient ``strength * w``
equals PyTorch SGD's ``weight_decay = strength``.

Selection (the rule of timm and nanoGPT): weight matrices and convolution kernels
(``ndim >= 2``) are penalized; biases only when ``include_bias`` is set; normalization
parameters (batch-norm scale and shift) never.

Two ways to apply a penalty (``mode``):

- ``penalty`` (default): the penalty's gradient joins the data loss's gradient; for L1
  that is the sub-gradient ``sign(w)``, which shrinks weights but almost never makes them
  exactly zero. The built-in penalties add their closed-form gradient straight to
  ``w.grad`` (:meth:`Regularizer.add_gradient`: two fused passes over the weights),
  which is exactly what autograd would compute for ``data_loss + penalty`` at a fraction
  of the cost (no penalty graph to build and walk every step).
- ``proximal``: the optimizer sees the data loss only, and after every optimizer step
  the weights are mapped through the penalty's proximal operator with the step's
  learning rate ``lr``. For the elastic net (``s`` = strength, ``rho`` = l1_ratio)::

      w <- sign(w) * max(|w| - lr * s * rho, 0) / (1 + lr * s * (1 - rho))

  which sets small weights exactly to zero. With plain SGD (no momentum) this is
  proximal gradient descent (ISTA), whose fixed points are exactly the minimizers of
  ``data_loss + penalty`` (full batch: the scikit-learn / glmnet solution). With
  momentum or Adam the step is not ``lr * gradient``, so the same operator is a
  heuristic: it still produces exact zeros but the solution is only approximately the
  penalized optimum.

Writing your own regularizer: subclass :class:`Regularizer`, implement
:meth:`Regularizer.penalty` (and :meth:`Regularizer.after_step` for a proximal step or
a constraint) and point ``regularizer._target_`` at the class. Its constructor receives
the other keys of the ``regularizer`` config. Autograd differentiates ``penalty`` unless
the class also implements :meth:`Regularizer.add_gradient` (see
:func:`adds_own_gradient`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from reglab import checks

MODES = ("penalty", "proximal")
_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def select_weights(model: nn.Module, include_bias: bool = False) -> list[nn.Parameter]:
    """Parameters a penalty applies to: ``ndim >= 2`` tensors, plus layer biases on request.

    Parameters of normalization layers are never selected. Without biases it is also the
    group that gets the optimizer's ``weight_decay`` (the rest gets none), in both engines.
    """
    selected = []
    for module in model.modules():
        if isinstance(module, _NORM_LAYERS):
            continue
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if param.ndim >= 2 or (include_bias and name == "bias"):
                selected.append(param)
    return selected


class Regularizer:
    """A penalty on a list of weight tensors, and optionally a step after each update.

    When ``in_loss`` is true the training module adds the penalty's gradient to the data
    loss's every step: through :meth:`add_gradient` when the class implements it for its
    :meth:`penalty`, otherwise by adding :meth:`penalty` to the loss for autograd. After
    every optimizer step it calls :meth:`after_step`; at the end of every epoch it reports
    :meth:`penalty` of the current weights and :meth:`metrics`.
    """

    in_loss = True

    def __init__(self, include_bias: bool = False) -> None:
        self.include_bias = checks.flag("regularizer.include_bias", include_bias)

    def select(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters of ``model`` this regularizer sees (see :func:`select_weights`)."""
        return select_weights(model, include_bias=self.include_bias)

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        """Scalar penalty for ``weights``; differentiable where it is non-zero."""
        raise NotImplementedError

    def add_gradient(self, weights: Sequence[Tensor]) -> None:
        """Optional: add ``d penalty / d w`` to every ``w.grad`` in place (a missing
        ``.grad`` counts as zero). Called after the backward pass, before the optimizer
        step; must equal autograd's gradient of :meth:`penalty`."""
        raise NotImplementedError

    def after_step(self, weights: Sequence[Tensor], lr: float) -> None:
        """Called after each optimizer step with its learning rate; no-op by default."""

    def steps_after(self) -> bool:
        """Whether :meth:`after_step` may change the weights: by default, whenever the class
        implements it. A stacked fit calls it only for the members whose regularizer does."""
        return _owner(type(self), "after_step") is not Regularizer

    def metrics(self, weights: Sequence[Tensor]) -> dict[str, Tensor]:
        """Extra per-epoch metrics (name -> scalar tensor); none by default."""
        return {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _owner(cls: type, method: str) -> type:
    return next(c for c in cls.__mro__ if method in vars(c))


def _steps_when_proximal(regularizer: Regularizer, cls: type) -> bool:
    """:meth:`Regularizer.steps_after` of a regularizer ``cls`` whose step is its proximal
    operator: in proximal mode with a non-zero strength, or when a subclass of ``cls`` steps
    its own way."""
    proximal = regularizer.mode == "proximal" and regularizer.strength != 0
    return proximal or _owner(type(regularizer), "after_step") is not cls


def adds_own_gradient(regularizer: Regularizer) -> bool:
    """Whether ``regularizer`` supplies the gradient of its own :meth:`~Regularizer.penalty`:
    it implements :meth:`~Regularizer.add_gradient` in the class that defines ``penalty``
    or in a subclass of it. A subclass that overrides ``penalty`` alone (say, of
    :class:`ElasticNet`) does not inherit the parent's gradient: autograd differentiates it.
    """
    cls = type(regularizer)
    gradient_owner = _owner(cls, "add_gradient")
    return gradient_owner is not Regularizer and issubclass(gradient_owner, _owner(cls, "penalty"))


def elastic_gradient(regularizer: Regularizer) -> tuple[float, float] | None:
    """``(l1, l2)`` when the gradient ``regularizer`` adds every step is the elastic net's,
    ``l1 * sign(w) + l2 * w`` (:func:`add_elastic_gradient`): an :class:`ElasticNet` (``L1``,
    ``L2``) in penalty mode that :func:`adds_own_gradient` (:meth:`ElasticNet.coefficients`),
    or :class:`NoPenalty` (``(0, 0)``); ``None`` for any other regularizer or mode. A stacked
    fit adds these members' gradients in one call with per-member coefficients."""
    if not regularizer.in_loss or not adds_own_gradient(regularizer):
        return None
    owner = _owner(type(regularizer), "add_gradient")
    if owner is NoPenalty:
        return 0.0, 0.0
    return regularizer.coefficients() if owner is ElasticNet else None


def _grads(weights: Sequence[Tensor]) -> list[Tensor]:
    """The ``.grad`` of every tensor, zeros where backward left none (an unused weight)."""
    for w in weights:
        if w.grad is None:
            w.grad = torch.zeros_like(w)
    return [w.grad for w in weights]


def _zero(weights: Sequence[Tensor]) -> Tensor:
    return torch.zeros((), device=weights[0].device if weights else None)


def _check_strength(strength: float) -> float:
    return checks.number("regularizer.strength", strength, low=0)


def _check_mode(mode: str) -> str:
    return checks.choice("regularizer.mode", mode, MODES)


class NoPenalty(Regularizer):
    """The baseline: ``penalty(w) = 0``.

    It accepts (and ignores) a ``strength`` so that one strength can be set for every
    regularizer of a sweep, ``none`` included (``regularizer.strength=1e-3``).
    """

    def __init__(self, strength: float = 0.0, include_bias: bool = False) -> None:
        super().__init__(include_bias)
        self.strength = _check_strength(strength)

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        return _zero(weights)

    def add_gradient(self, weights: Sequence[Tensor]) -> None:
        """The gradient of zero: nothing to add."""


class ElasticNet(Regularizer):
    """``strength * (l1_ratio * ||w||_1 + 0.5 * (1 - l1_ratio) * ||w||_2^2)``.

    Both norms are taken over all selected tensors in one fused pass
    (``torch._foreach_norm``), not a Python loop over elements. ``mode="proximal"``
    applies the elastic-net proximal operator after each step instead of adding the
    gradient (see the module docstring for where that is exact).
    """

    def __init__(
        self,
        strength: float,
        l1_ratio: float = 0.5,
        include_bias: bool = False,
        mode: str = "penalty",
    ) -> None:
        super().__init__(include_bias)
        self.strength = _check_strength(strength)
        self.l1_ratio = checks.number("regularizer.l1_ratio", l1_ratio, 0, 1)
        self.mode = _check_mode(mode)
        self.in_loss = mode == "penalty"

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        if not weights:
            return torch.zeros(())
        total = weights[0].new_zeros(())
        if self.l1_ratio > 0:
            l1 = torch.stack(torch._foreach_norm(weights, 1)).sum()
            total = total + self.l1_ratio * l1
        if self.l1_ratio < 1:
            squared_l2 = torch.stack(torch._foreach_norm(weights, 2)).square().sum()
            total = total + 0.5 * (1.0 - self.l1_ratio) * squared_l2
        return self.strength * total

    def coefficients(self) -> tuple[float, float]:
        """``(strength * l1_ratio, strength * (1 - l1_ratio))``: the penalty's gradient is
        ``l1 * sign(w) + l2 * w`` with these ``(l1, l2)``."""
        return self.strength * self.l1_ratio, self.strength * (1.0 - self.l1_ratio)

    def add_gradient(self, weights: Sequence[Tensor]) -> None:
        """``grad += strength * (l1_ratio * sign(w) + (1 - l1_ratio) * w)``
        (:func:`add_elastic_gradient` with :meth:`coefficients`)."""
        add_elastic_gradient(weights, *self.coefficients())

    def steps_after(self) -> bool:
        return _steps_when_proximal(self, ElasticNet)

    @torch.no_grad()
    def after_step(self, weights: Sequence[Tensor], lr: float) -> None:
        """Soft-threshold by ``lr*s*rho``, then divide by ``1 + lr*s*(1-rho)``."""
        if self.mode != "proximal" or self.strength == 0 or not weights:
            return
        threshold = lr * self.strength * self.l1_ratio
        if threshold > 0:
            magnitudes = torch._foreach_abs(weights)
            torch._foreach_sub_(magnitudes, threshold)
            torch._foreach_clamp_min_(magnitudes, 0.0)
            signs = torch._foreach_sign(weights)
            torch._foreach_mul_(signs, magnitudes)
            torch._foreach_copy_(weights, signs)
        shrink = 1.0 + lr * self.strength * (1.0 - self.l1_ratio)
        if shrink != 1.0:
            torch._foreach_div_(weights, shrink)


@torch.no_grad()
def add_elastic_gradient(weights: Sequence[Tensor], l1: float | Tensor, l2: float | Tensor) -> None:
    """``w.grad += l1 * sign(w) + l2 * w`` for every ``w`` (a missing ``.grad`` counts as
    zero); ``sign(0) = 0``, the sub-gradient autograd takes for ``|w|`` at zero.

    ``l1``, ``l2`` are numbers (one model: two fused passes over the tensors), or tensors of
    shape ``(K,)`` for weights stacked along a leading member axis of length ``K``: member
    ``k``'s slice gets its own ``l1[k]``, ``l2[k]`` (a stack of models, :mod:`reglab.stacked`).
    """
    grads = _grads(weights)
    if not weights:
        return
    if isinstance(l1, Tensor):
        for weight, grad in zip(weights, grads, strict=True):
            shape = (-1, *[1] * (weight.ndim - 1))
            grad.addcmul_(torch.sign(weight), l1.to(weight).view(shape))
            grad.addcmul_(weight, l2.to(weight).view(shape))
        return
    if l1 != 0:
        torch._foreach_add_(grads, torch._foreach_sign(weights), alpha=l1)
    if l2 != 0:
        torch._foreach_add_(grads, weights, alpha=l2)


class L1(ElasticNet):
    """Lasso penalty ``strength * ||w||_1`` (elastic net with ``l1_ratio = 1``)."""

    def __init__(self, strength: float, include_bias: bool = False, mode: str = "penalty") -> None:
        super().__init__(strength, l1_ratio=1.0, include_bias=include_bias, mode=mode)


class L2(ElasticNet):
    """Ridge penalty ``0.5 * strength * ||w||_2^2`` (elastic net with ``l1_ratio = 0``)."""

    def __init__(self, strength: float, include_bias: bool = False, mode: str = "penalty") -> None:
        super().__init__(strength, l1_ratio=0.0, include_bias=include_bias, mode=mode)


def _unit_rows(weight: Tensor) -> Tensor:
    """Each output unit's incoming weights as one row: ``(out, in)`` or ``(out, in*k*k)``."""
    return weight.reshape(weight.shape[0], -1)


class GroupLasso(Regularizer):
    """``strength * sum_units ||w_unit||_2``: one group per output unit (a row of a Linear
    weight, a filter of a conv kernel), so whole units are switched off together.

    Its proximal step is block soft-thresholding, which sets whole rows exactly to zero::

        w_unit <- max(0, 1 - lr * strength / ||w_unit||_2) * w_unit

    Logs ``weights/dead_unit_fraction``: the share of rows that are exactly zero.
    """

    def __init__(self, strength: float, include_bias: bool = False, mode: str = "proximal") -> None:
        super().__init__(include_bias)
        self.strength = _check_strength(strength)
        self.mode = _check_mode(mode)
        self.in_loss = mode == "penalty"

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        if not weights:
            return torch.zeros(())
        norms = [torch.linalg.vector_norm(_unit_rows(w), dim=1).sum() for w in weights]
        return self.strength * torch.stack(norms).sum()

    @torch.no_grad()
    def add_gradient(self, weights: Sequence[Tensor]) -> None:
        """``grad_unit += strength * w_unit / ||w_unit||_2``; zero for an all-zero unit (the
        sub-gradient autograd takes there)."""
        grads = _grads(weights)
        if self.strength == 0:
            return
        for weight, grad in zip(weights, grads, strict=True):
            rows = _unit_rows(weight)
            norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            grad.add_((rows * (self.strength / norms.clamp_min(1e-30))).reshape(grad.shape))

    def steps_after(self) -> bool:
        return _steps_when_proximal(self, GroupLasso)

    @torch.no_grad()
    def after_step(self, weights: Sequence[Tensor], lr: float) -> None:
        if self.mode != "proximal" or self.strength == 0:
            return
        threshold = lr * self.strength
        for weight in weights:
            rows = _unit_rows(weight)
            norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            scale = (1.0 - threshold / norms.clamp_min(1e-12)).clamp_min_(0.0)
            rows.mul_(scale)

    @torch.no_grad()
    def metrics(self, weights: Sequence[Tensor]) -> dict[str, Tensor]:
        if not weights:
            return {}
        dead = torch.cat([(_unit_rows(w) == 0).all(dim=1) for w in weights])
        return {"weights/dead_unit_fraction": dead.float().mean()}


class MaxNorm(Regularizer):
    """Max-norm constraint (Srivastava et al. 2014): after every step each unit's incoming
    weight vector is rescaled to ``||w_unit||_2 <= max_norm``. Adds nothing to the loss;
    usually combined with dropout. Logs ``weights/max_unit_norm``.
    """

    in_loss = False

    def __init__(self, max_norm: float = 3.0, include_bias: bool = False) -> None:
        super().__init__(include_bias)
        self.max_norm = checks.number("regularizer.max_norm", max_norm, low=0, low_open=True)

    def penalty(self, weights: Sequence[Tensor]) -> Tensor:
        return _zero(weights)

    @torch.no_grad()
    def after_step(self, weights: Sequence[Tensor], lr: float) -> None:
        for weight in weights:
            if weight.ndim >= 2:
                weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=self.max_norm))

    @torch.no_grad()
    def metrics(self, weights: Sequence[Tensor]) -> dict[str, Tensor]:
        norms = [torch.linalg.vector_norm(_unit_rows(w), dim=1).max() for w in weights if w.ndim >= 2]
        return {"weights/max_unit_norm": torch.stack(norms).max()} if norms else {}
