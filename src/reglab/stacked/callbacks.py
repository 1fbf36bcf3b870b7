"""Early stopping per member of a stack, with Lightning ``EarlyStopping``'s rule."""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

from reglab.stacked.module import DIVERGED, StackedModule


class MemberEarlyStopping(Callback):
    """Lightning's ``EarlyStopping`` rule, applied to each member after every validation:
    a value improves when ``value < best - min_delta`` (``mode="min"``; ``> best + min_delta``
    for ``"max"``); after ``patience`` validations without improvement the member stops
    (leaves the stack at the end of the epoch, once ``trainer.min_epochs`` are done); with
    ``check_finite`` a non-finite value stops it, and it fails as diverged, as its sequential
    run would. ``patience`` and ``min_delta`` are per member (a list, in member order)."""

    def __init__(
        self, monitor: str, mode: str, patience: list[int], min_delta: list[float], check_finite: bool
    ) -> None:
        self.monitor, self.mode, self.check_finite = monitor, mode, check_finite
        self.patience, self.min_delta = patience, [abs(d) for d in min_delta]
        self.best = [math.inf if mode == "min" else -math.inf] * len(patience)
        self.wait = [0] * len(patience)
        self.stopped_epoch = [0] * len(patience)

    def on_validation_end(self, trainer, pl_module: StackedModule) -> None:
        if trainer.sanity_checking or self.monitor not in pl_module.latest_val:
            return
        values = pl_module.latest_val[self.monitor].tolist()
        for p, member in enumerate(pl_module.active):
            if pl_module.want_stop[member]:
                continue
            value = values[p]
            if self.check_finite and not math.isfinite(value):
                pl_module.want_stop[member] = True
                if pl_module.failure[member] is None:
                    pl_module.failure[member] = (
                        f"{self.monitor} is {value} at epoch {trainer.current_epoch}: {DIVERGED}"
                    )
                continue
            if self._improves(value, member):
                self.best[member], self.wait[member] = value, 0
                continue
            self.wait[member] += 1
            if self.wait[member] >= self.patience[member]:
                pl_module.want_stop[member] = True
                self.stopped_epoch[member] = trainer.current_epoch

    def _improves(self, value: float, member: int) -> bool:
        if self.mode == "min":
            return value + self.min_delta[member] < self.best[member]
        return value - self.min_delta[member] > self.best[member]
