"""SGD, Adam and AdamW over stacked parameters, with a learning rate, weight decay and
momentum per member.

Each member's update is the one ``torch.optim`` computes for its own parameters
(single-tensor implementations, the CPU default; ``tests/test_stacked.py`` compares them to
``torch.optim`` member by member). Per-member values are tensors of shape ``(K,)``,
broadcast over each parameter's member axis. Notation for one member, gradient ``g``,
weight decay ``wd`` (0 for the non-decayed group: biases and normalization parameters):

- SGD: ``g += wd * w``; with momentum ``m``: ``b = g`` at the first step, then
  ``b = m * b + (1 - dampening) * g``, ``g = g + m * b`` (Nesterov) or ``g = b``;
  ``w -= lr * g``.
- Adam: ``g += wd * w``; AdamW instead ``w *= 1 - lr * wd``; then
  ``m1 = lerp(m1, g, 1 - beta1)``, ``m2 = beta2 * m2 + (1 - beta2) * g^2``,
  ``w -= lr / (1 - beta1^t) * m1 / (sqrt(m2) / sqrt(1 - beta2^t) + eps)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = {"torch.optim.SGD": "sgd", "torch.optim.Adam": "adam", "torch.optim.AdamW": "adamw"}


def _uniform(values: Tensor) -> float | Tensor:
    """One Python number when every member has the same value (the update is then the
    single-model one, in place), else the per-member tensor."""
    first = float(values[0]) if len(values) else 0.0
    return first if bool((values == first).all()) else values


def _shaped(value: float | Tensor, like: Tensor) -> float | Tensor:
    """A per-member tensor ``(K,)`` shaped to broadcast over ``like`` ``(K, ...)``."""
    return value if isinstance(value, float) else value.to(like).view(-1, *[1] * (like.ndim - 1))


def _nonzero(value: float | Tensor) -> bool:
    return value != 0 if isinstance(value, float) else bool((value != 0).any())


class StackedOptimizer(torch.optim.Optimizer):
    """One optimizer step for every member of a stack (see the module docstring).

    ``groups`` are ``{"params": [...], "decay": bool}``; ``lr``, ``weight_decay`` and
    ``momentum`` hold one value per member. :meth:`keep` drops the members that left."""

    def __init__(
        self,
        groups: list[dict],
        kind: str,
        lr: Tensor,
        weight_decay: Tensor,
        momentum: Tensor,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        dampening: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(groups, {"decay": True})
        self.kind = kind
        self.lr, self.weight_decay, self.momentum = lr, weight_decay, momentum
        self.betas, self.eps, self.dampening, self.nesterov = tuple(betas), eps, dampening, nesterov

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lr, decay, momentum = (_uniform(v) for v in (self.lr, self.weight_decay, self.momentum))
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                step_lr, step_decay = _shaped(lr, param), _shaped(decay if group["decay"] else 0.0, param)
                if self.kind == "sgd":
                    self._sgd(param, param.grad, step_lr, step_decay, _shaped(momentum, param))
                else:
                    self._adam(param, param.grad, step_lr, step_decay)
        return loss

    def _sgd(self, param: Tensor, grad: Tensor, lr, decay, momentum) -> None:
        if _nonzero(decay):
            grad = grad + decay * param
        if _nonzero(momentum):
            state = self.state[param]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                state["momentum_buffer"].mul_(momentum).add_(grad, alpha=1 - self.dampening)
            buffer = state["momentum_buffer"]
            moved = grad + momentum * buffer if self.nesterov else buffer
            grad = moved if isinstance(momentum, float) else torch.where(momentum != 0, moved, grad)
        if isinstance(lr, float):
            param.add_(grad, alpha=-lr)
        else:
            param.sub_(lr * grad)

    def _adam(self, param: Tensor, grad: Tensor, lr, decay) -> None:
        if _nonzero(decay):
            if self.kind == "adamw":
                param.mul_(1 - lr * decay)
            else:
                grad = grad + decay * param
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        beta1, beta2 = self.betas
        state["step"] += 1
        step = state["step"]
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = state["exp_avg_sq"].sqrt().div_(math.sqrt(1 - beta2**step)).add_(self.eps)
        if isinstance(lr, float):
            param.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**step))
        else:
            param.addcmul_(state["exp_avg"].div(denom), lr, value=-1 / (1 - beta1**step))

    def keep(self, positions: Tensor, replaced: dict[Tensor, Tensor]) -> None:
        """Keep the members at ``positions``: per-member values and state are cut, and each
        parameter in ``replaced`` (old -> new, already cut) takes over its state."""
        self.lr, self.weight_decay, self.momentum = (
            v.index_select(0, positions.to(v.device)) for v in (self.lr, self.weight_decay, self.momentum)
        )
        for group in self.param_groups:
            group["params"] = [replaced.get(p, p) for p in group["params"]]
        state = {
            replaced.get(old, old): {
                k: v.index_select(0, positions) if torch.is_tensor(v) else v for k, v in values.items()
            }
            for old, values in self.state.items()
        }
        self.state.clear()  # in place: Lightning's optimizer wrapper shares this object
        self.state.update(state)
