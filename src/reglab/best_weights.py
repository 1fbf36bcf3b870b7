"""Keep the best epoch's weights in memory; restore them when fitting ends.

Lightning's ``ModelCheckpoint`` serializes the model (and, unless told otherwise, the
optimizer) to disk on every improving epoch and the test stage reads it back. For the
small models of a regularization sweep that write costs about as much as the epoch's
training (measured: ~10 ms per improving epoch on the digits MLP, ~10 % of a 20-epoch
fit). :class:`BestWeights` copies the state dict into preallocated tensors instead
(one fused copy), puts the best weights back into the module at the end of ``fit``, so
that ``trainer.test`` and the returned model use them, and writes them to disk once.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from reglab import checks

MODES = ("min", "max")


def improves(value: float, best: float, mode: str) -> bool:
    """Whether ``value`` is better than ``best``: finite and strictly lower (``mode="min"``)
    or higher (``"max"``), so of tied values the first stays the best."""
    if not math.isfinite(value):
        return False
    return value < best if mode == "min" else value > best


class BestWeights(Callback):
    """Track ``monitor`` after every validation; keep the weights of the best epoch.

    An epoch is better when its value :func:`improves` on the best so far (strictly, and
    finite: of tied epochs the first is kept); :meth:`consider` applies that rule, here to
    ``trainer.callback_metrics``, in a stacked fit (:mod:`reglab.stacked`) to each member's
    value on the member's own object. At the end of ``fit`` the module gets the best weights
    back (all of its state dict: parameters and buffers such as batch-norm statistics) and,
    with ``save``, the process of rank zero writes them to ``dirpath / filename``
    (``{epoch}`` is replaced by the best epoch) as ``{"state_dict", "epoch", "monitor",
    "score"}``, loadable with ``torch.load``. ``dirpath`` defaults to the run's
    ``checkpoints/`` folder.
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: str = "min",
        save: bool = True,
        dirpath: str | None = None,
        filename: str = "best-epoch={epoch}.ckpt",
    ) -> None:
        checks.choice("callbacks.best_weights.mode", mode, MODES)
        self.monitor, self.mode, self.save = monitor, mode, save
        self.dirpath, self.filename = dirpath, filename
        self._best: dict[str, torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """No best epoch yet (the start of a fit)."""
        self.best_score = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_model_path = ""

    def consider(self, value: float, epoch: int) -> bool:
        """Whether ``epoch``'s monitored ``value`` :func:`improves` on the best so far; if
        so it becomes the best (``best_score``, ``best_epoch``)."""
        if not improves(value, self.best_score, self.mode):
            return False
        self.best_score, self.best_epoch = value, epoch
        return True

    def on_fit_start(self, trainer, pl_module) -> None:
        self._best = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.reset()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        if not self.consider(float(trainer.callback_metrics[self.monitor]), trainer.current_epoch):
            return
        current = pl_module.state_dict()
        torch._foreach_copy_(list(self._best.values()), [current[k].detach() for k in self._best])

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.best_epoch is None:  # never validated, or never finite: keep the last weights
            return
        pl_module.load_state_dict(self._best)
        if self.save and trainer.is_global_zero:
            folder = Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints")
            self.best_model_path = str(self.write(folder, self._best, self.best_epoch, self.best_score))

    def write(self, folder: Path, state_dict: dict, epoch: int, score: float) -> Path:
        """``folder / filename`` with ``{"state_dict", "epoch", "monitor", "score"}``."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename.format(epoch=epoch)
        torch.save({"state_dict": state_dict, "epoch": epoch, "monitor": self.monitor, "score": score}, path)
        return path
