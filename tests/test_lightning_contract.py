"""What reglab relies on in Lightning's behaviour, pinned directly: a Lightning upgrade
that changes one of these fails here, not in the middle of a sweep.

- Lightning sets ``LightningModule._current_fx_name`` around hook calls (the module's
  ``__setattr__`` short-cuts exactly that name);
- ``EarlyStopping`` and ``ModelCheckpoint`` read ``trainer.callback_metrics``, which the
  module fills itself (``_publish``) instead of ``self.log``;
- the logger's ``log_metrics`` receives what ``_publish`` passes, once per epoch;
- ``trainer.test`` returns what the module logs with ``self.log_dict`` in the test stage;
- ``EarlyStopping._evaluate_stopping_criteria(value)`` is its whole rule for one value
  (returns ``(should_stop, reason)``, keeps ``best_score`` and ``wait_count``), and
  ``_validate_condition_metric(metrics)`` its handling of a missing monitor, which the stacked
  engine applies to each member's own ``EarlyStopping`` (``reglab.stacked.callbacks``).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers.logger import Logger

from reglab.data.batches import InMemoryBatches
from reglab.models import MLP
from reglab.module import (
    EVAL_COUNT,
    EVAL_LOSS_SUM,
    TRAIN_CORRECT,
    TRAIN_COUNT,
    TRAIN_LOSS_SUM,
    RegularizedModule,
)
from reglab.regularizers import L2


def _data(n: int = 64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=generator)
    y = (x[:, 0] > 0).long()
    return x, y


def _module() -> RegularizedModule:
    torch.manual_seed(0)
    return RegularizedModule(
        MLP(5, 2, hidden=[8]), L2(1e-3), lambda params: torch.optim.SGD(params, lr=0.1), "classification", 2
    )


def _trainer(epochs: int, callbacks=(), logger=False) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )


class _HookNames(Callback):
    """Reads the module's ``_current_fx_name`` inside the training step."""

    def __init__(self) -> None:
        self.seen: set = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.add(pl_module.__dict__.get("_current_fx_name"))


class _RecordingLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[dict, int]] = []

    name = "recording"
    version = "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((dict(metrics), step))


def test_lightning_sets_current_fx_name_and_the_shortcut_stores_it_as_a_plain_attribute(monkeypatch):
    x, y = _data()
    module, names = _module(), _HookNames()
    _trainer(1, [names]).fit(
        module, InMemoryBatches(x, y, 16, shuffle=True), InMemoryBatches(x, y, 64, shuffle=False)
    )
    # Lightning names the hook it is in; reglab's __setattr__ kept it out of nn.Module's
    # bookkeeping (an ordinary instance attribute, not a buffer, parameter or submodule).
    assert names.seen == {"on_train_batch_end"}
    routed = []
    original = torch.nn.Module.__setattr__

    def recording(self, name, value):
        routed.append(name)
        original(self, name, value)

    monkeypatch.setattr(torch.nn.Module, "__setattr__", recording)
    module._current_fx_name = "training_step"
    module.other_attribute = 1
    assert routed == ["other_attribute"] and module._current_fx_name == "training_step"


def test_early_stopping_reads_the_metrics_the_module_publishes():
    """val/loss never improves by min_delta=10: EarlyStopping must stop after patience + 1
    epochs, which it can only do by reading ``trainer.callback_metrics``."""
    x, y = _data()
    stopper = EarlyStopping(monitor="val/loss", mode="min", patience=2, min_delta=10.0)
    trainer = _trainer(20, [stopper])
    trainer.fit(_module(), InMemoryBatches(x, y, 16, shuffle=True), InMemoryBatches(x, y, 64, shuffle=False))
    assert stopper.stopped_epoch == 2 and trainer.current_epoch == 3
    assert {"val/loss", "train/loss", "train/acc"} <= set(trainer.callback_metrics)


def test_early_stopping_rule_for_one_value_is_evaluate_stopping_criteria():
    """What MemberEarlyStopping calls: min_delta (signed by mode inside), patience, the best
    score and wait count kept on the object, a non-finite value stopping with check_finite."""
    stopper = EarlyStopping(monitor="val/acc", mode="max", patience=2, min_delta=0.1)

    def value(v: float) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.float64)

    assert stopper._evaluate_stopping_criteria(value(0.5))[0] is False and stopper.best_score == 0.5
    assert stopper._evaluate_stopping_criteria(value(0.6))[0] is False and stopper.wait_count == 1
    should_stop, reason = stopper._evaluate_stopping_criteria(value(0.55))
    assert should_stop and "did not improve" in reason and stopper.best_score == 0.5
    assert stopper.stopped_epoch == 0  # the caller sets it, as _run_early_stopping_check does
    finite = EarlyStopping(monitor="val/loss", mode="min", patience=5, check_finite=True)
    assert finite._evaluate_stopping_criteria(value(float("nan")))[0] is True
    assert finite._validate_condition_metric({"val/loss": value(1.0)}) is True
    with pytest.raises(RuntimeError, match="val/loss"):  # strict (the default): a missing monitor
        finite._validate_condition_metric({"val/acc": value(1.0)})
    lenient = EarlyStopping(monitor="val/loss", strict=False)
    assert lenient._validate_condition_metric({}) is False


def test_the_logger_gets_one_call_per_stage_and_epoch_with_the_epoch_as_step():
    x, y = _data()
    logger, module = _RecordingLogger(), _module()
    _trainer(3, logger=logger).fit(
        module, InMemoryBatches(x, y, 16, shuffle=True), InMemoryBatches(x, y, 64, shuffle=False)
    )
    train_steps = [step for metrics, step in logger.calls if "train/loss" in metrics]
    val_steps = [step for metrics, step in logger.calls if "val/loss" in metrics]
    assert train_steps == [0, 1, 2] and val_steps == [0, 1, 2]
    assert module.history["val/loss"] == [m["val/loss"] for m, _ in logger.calls if "val/loss" in m]


def test_named_slots_hold_the_epoch_sums_they_name():
    """After one epoch, the train sums are (loss * n, correct, n) and the eval sums
    (loss * n, n): the slot names index what they say."""
    x, y = _data(40)
    module = _module()
    sums = {}

    class Snapshot(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            sums["train"] = pl_module._train_sums.clone()

    trainer = _trainer(1, [Snapshot()])
    trainer.fit(module, InMemoryBatches(x, y, 40, shuffle=False), InMemoryBatches(x, y, 40, shuffle=False))
    assert sums["train"][TRAIN_COUNT] == 40
    assert 0 <= sums["train"][TRAIN_CORRECT] <= 40
    assert float(sums["train"][TRAIN_LOSS_SUM] / 40) == module.history["train/data_loss"][0]
    module._eval_sums.zero_()
    module._eval_step((x, y), module.val_metrics)
    assert module._eval_sums[EVAL_COUNT] == 40 and module._eval_sums[EVAL_LOSS_SUM] > 0


def test_trainer_test_returns_what_the_test_stage_logs():
    x, y = _data()
    module = _module()
    trainer = _trainer(1)
    trainer.fit(module, InMemoryBatches(x, y, 16, shuffle=True), InMemoryBatches(x, y, 64, shuffle=False))
    tested = trainer.test(module, InMemoryBatches(x, y, 64, shuffle=False), verbose=False)
    assert {"test/loss", "test/acc", "test/f1", "test/ece"} <= set(tested[0])
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(module.model(x), y)
    assert abs(tested[0]["test/loss"] - float(expected)) < 1e-6
