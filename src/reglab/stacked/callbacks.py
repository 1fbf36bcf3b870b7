"""Early stopping per member of a stack: each member's own Lightning ``EarlyStopping``."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback, EarlyStopping

from reglab.stacked.module import StackedModule


class MemberEarlyStopping(Callback):
    """After every validation, each training member's value of the monitor goes to its own
    ``EarlyStopping`` object's rule (``_evaluate_stopping_criteria``: its ``min_delta``,
    ``patience``, ``check_finite``, best score and wait count, on the value in the dtype its
    sequential run publishes), and where it says stop, the member wants to stop and that
    object's ``stopped_epoch`` is the epoch, as ``EarlyStopping`` does with the trainer. A
    member that wants to stop leaves the stack at the end of the epoch, once
    ``trainer.min_epochs`` are done (:class:`~reglab.stacked.module.StackedModule`); until
    then its rule keeps running, as its sequential run's does. A monitor the module does not
    publish is ``EarlyStopping``'s own case (``_validate_condition_metric``). ``stoppers``: one
    per member, in member order (all with the same ``monitor`` and ``strict``)."""

    def __init__(self, stoppers: list[EarlyStopping]) -> None:
        self.stoppers, self.monitor = stoppers, stoppers[0].monitor

    @property
    def stopped_epoch(self) -> list[int]:
        """Each member's ``stopped_epoch`` (0: it did not stop early)."""
        return [stopper.stopped_epoch for stopper in self.stoppers]

    def on_validation_end(self, trainer, pl_module: StackedModule) -> None:
        if trainer.sanity_checking or not self.stoppers[0]._validate_condition_metric(pl_module.latest_val):
            return  # a missing monitor: skipped, or with ``strict`` a RuntimeError, as in a sequential run
        values = pl_module.latest_val[self.monitor]
        for p, member in enumerate(pl_module.active):
            stopper = self.stoppers[member]
            should_stop, reason = stopper._evaluate_stopping_criteria(values[p])
            if should_stop:
                pl_module.want_stop[member] = True
                stopper.stopped_epoch, stopper.stopping_reason_message = trainer.current_epoch, reason
