"""Stop and fail a run whose loss explodes, even while it stays finite.

The rule (:class:`DivergenceGuard`): with ``reference`` the data loss of the very first
training batch, computed before any optimizer step (the untrained model's loss), a run has
diverged at the end of an epoch when

    train/data_loss > max_ratio * reference   or   val/loss > max_ratio * reference,

or when either is NaN or infinite. Training stops there and the pipeline raises
:class:`~reglab.errors.DivergedError` with the reason, so the run is FAILED with it in its
``reglab.failure_reason`` tag (a sweep records the job as failed and goes on). A healthy run
ends far below its initial loss, so the default ratio of 100 only catches explosions (an
Adam step of lr 1e6 on digits reaches ~1e17 in one epoch); the first epoch's mean would not
do as the reference, since it is already exploded in such a run.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

from reglab import checks

WATCHED = ("train/data_loss", "val/loss")


class DivergenceGuard(Callback):
    """Stops training when a watched loss exceeds ``max_ratio`` times the untrained model's
    loss or is not finite; ``reason`` says what happened (``None`` while healthy)."""

    def __init__(self, max_ratio: float = 100.0) -> None:
        self.max_ratio = checks.number("callbacks.divergence.max_ratio", max_ratio, low=1, low_open=True)
        self.reference: float | None = None
        self.reason: str | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.reference is None and trainer.current_epoch == 0 and batch_idx == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.reference = abs(float(loss))

    def on_validation_end(self, trainer, pl_module) -> None:
        self._check(trainer)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._check(trainer)  # the previous epoch's train/data_loss is published by now

    def _check(self, trainer) -> None:
        if self.reason is not None or trainer.sanity_checking:
            return
        for key in WATCHED:
            value = trainer.callback_metrics.get(key)
            if value is None:
                continue
            value = float(value)
            limit = self.max_ratio * self.reference if self.reference is not None else math.inf
            if not math.isfinite(value) or value > limit:
                self.reason = (
                    f"{key} is {value:.4g} at epoch {trainer.current_epoch}, above {self.max_ratio:g} x the "
                    f"untrained model's loss {self.reference:.4g}: training diverged "
                    "(lower optimizer.lr or regularizer.strength)"
                    if math.isfinite(value)
                    else f"{key} is {value} at epoch {trainer.current_epoch}: training diverged "
                    "(lower optimizer.lr or regularizer.strength)"
                )
                trainer.should_stop = True
                return
