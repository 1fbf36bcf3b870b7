"""Stop and fail a run whose loss explodes, even while it stays finite.

The rule (:func:`divergence_reason`): with ``reference`` the data loss of the very first
training batch, computed before any optimizer step (the untrained model's loss), a run has
diverged at the end of an epoch when

    train/data_loss > max_ratio * reference   or   val/loss > max_ratio * reference,

or when either is NaN or infinite. Training stops there and the pipeline raises
:class:`~reglab.errors.DivergedError` with the reason, so the run is FAILED with it in its
``reglab.failure_reason`` tag (a sweep records the job as failed and goes on). A healthy run
ends far below its initial loss, so the default ratio of 100 only catches explosions (an
Adam step of lr 1e6 on digits reaches ~1e17 in one epoch); the first epoch's mean would not
do as the reference, since it is already exploded in such a run. Whatever the guard, a run
whose last ``train/loss`` or ``val/loss`` is not finite has diverged too
(:func:`not_finite_at_end`). Both engines call these rules, the stacked one on each member's
own :class:`DivergenceGuard`; every reason ends with :data:`HINT`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lightning.pytorch.callbacks import Callback

from reglab import checks

FINAL = ("train/loss", "val/loss")  # checked once training ends, with or without a guard
HINT = "training diverged (lower optimizer.lr or regularizer.strength)"


def divergence_reason(
    key: str, value: float, reference: float | None, max_ratio: float, epoch: int
) -> str | None:
    """Why ``key``'s ``value`` at ``epoch`` is diverged: not finite, or above ``max_ratio *
    reference`` (no limit while ``reference`` is unknown); ``None`` while healthy."""
    if not math.isfinite(value):
        return f"{key} is {value} at epoch {epoch}: {HINT}"
    if reference is not None and value > max_ratio * reference:
        return (
            f"{key} is {value:.4g} at epoch {epoch}, above {max_ratio:g} x the untrained model's loss "
            f"{reference:.4g}: {HINT}"
        )
    return None


def not_finite_at_end(values: Mapping[str, float], epoch: int) -> str | None:
    """Why a fit whose last :data:`FINAL` ``values`` (after ``epoch`` epochs) include a
    non-finite one has diverged; ``None`` when they are finite (or absent)."""
    for key in FINAL:
        value = values.get(key)
        if value is not None and not math.isfinite(value):
            return f"{key} is {value} at the end of training (epoch {epoch}): {HINT}"
    return None


class DivergenceGuard(Callback):
    """Stops training when a watched loss exceeds ``max_ratio`` times the untrained model's
    loss or is not finite (:func:`divergence_reason`); ``reason`` says what happened first
    (``None`` while healthy). Every epoch's ``val/loss`` is checked after its validation and
    its ``train/data_loss`` once the module has published it (at the next epoch's start, or
    when training ends), each under its own epoch, as the stacked engine checks them."""

    def __init__(self, max_ratio: float = 100.0) -> None:
        self.max_ratio = checks.number("callbacks.divergence.max_ratio", max_ratio, low=1, low_open=True)
        self.reference: float | None = None
        self.reason: str | None = None
        self._trained: int | None = None  # the last epoch whose training ended

    def check(self, key: str, value: float, epoch: int) -> str | None:
        """Apply :func:`divergence_reason` to ``key``'s ``value`` at ``epoch``, keeping the
        first reason; returns the reason so far."""
        if self.reason is None:
            self.reason = divergence_reason(key, value, self.reference, self.max_ratio, epoch)
        return self.reason

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.reference is None and trainer.current_epoch == 0 and batch_idx == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.reference = abs(float(loss))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, "val/loss", trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._trained = trainer.current_epoch  # its train/data_loss is published after this hook

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._trained is not None:
            self._check(trainer, "train/data_loss", self._trained)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._trained is not None:
            self._check(trainer, "train/data_loss", self._trained)

    def _check(self, trainer, key: str, epoch: int) -> None:
        value = trainer.callback_metrics.get(key)
        if self.reason is None and value is not None and self.check(key, float(value), epoch) is not None:
            trainer.should_stop = True
