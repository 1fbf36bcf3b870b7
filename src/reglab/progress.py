"""One console line per epoch instead of a per-step progress bar.

A per-step bar costs time on every step and floods logs that are not a terminal;
a sweep of dozens of runs reads better as one line per epoch.
"""

from __future__ import annotations

import logging
import time

from lightning.pytorch.callbacks import Callback

log = logging.getLogger("reglab")

SHOWN = ("train/loss", "train/penalty", "val/loss", "val/acc", "val/r2")


class EpochSummary(Callback):
    """Log ``epoch i/N  train/loss ...  val/loss ...  (elapsed)`` once an epoch is complete.

    The module logs its train aggregates in its own ``on_train_epoch_end``, which runs
    after the callbacks' hook, so an epoch is reported when the next one starts (and
    the last one when fitting ends).
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = max(1, int(every_n_epochs))
        self._started = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0 and trainer.current_epoch % self.every_n_epochs == 0:
            self._report(trainer, trainer.current_epoch)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._report(trainer, trainer.current_epoch)

    def _report(self, trainer, epoch: int) -> None:
        metrics = trainer.callback_metrics
        shown = "  ".join(f"{k} {float(metrics[k]):.4f}" for k in SHOWN if k in metrics)
        elapsed = time.perf_counter() - self._started
        log.info("epoch %d/%d  %s  (%.1fs)", epoch, trainer.max_epochs, shown, elapsed)
