"""The LightningModule: ``loss = data loss + penalty``.

Data loss is cross-entropy for classification and mean squared error for regression.
Metrics are accumulated on the device during an epoch and logged once at its end
(no per-step logging calls or host syncs):

- ``train/data_loss`` and, for classification, ``train/acc``: sample-weighted means over
  the epoch's batches, in training mode (dropout active); ``train/penalty``: the penalty
  of the weights at the end of the epoch (reported also when a proximal regularizer
  applies it outside the loss); ``train/loss`` = ``train/data_loss + train/penalty``;
- ``val/loss`` (data loss only: the penalty does not depend on the data) and, by task,
  classification ``val/acc``, ``val/f1`` (macro) and ``val/ece`` (expected calibration
  error, 15 bins), regression ``val/mse``, ``val/mae``, ``val/r2``; the same under ``test/``;
- ``weights/l1`` = sum |w|, ``weights/l2`` = sqrt(sum w^2), ``weights/zero_fraction``
  (w == 0) and ``weights/near_zero_fraction`` (|w| < 1e-3) over the ``ndim >= 2``
  weight tensors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from reglab.data import CLASSIFICATION
from reglab.models import TargetScale
from reglab.regularizers import Regularizer, adds_own_gradient, select_weights

NEAR_ZERO = 1e-3

# Slots of the epoch sums kept on the device (one tensor each, so that an epoch costs no
# host sync until its end and a distributed run reduces them in one call).
TRAIN_LOSS_SUM, TRAIN_CORRECT, TRAIN_COUNT = range(3)  # _train_sums
EVAL_LOSS_SUM, EVAL_COUNT = range(2)  # _eval_sums

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def weight_statistics(weights: list[Tensor]) -> dict[str, Tensor]:
    """Norms and sparsity of a list of tensors, computed without leaving the device."""
    if not weights:
        return {}
    with torch.no_grad():
        flat = torch.cat([w.detach().reshape(-1) for w in weights])
        magnitude = flat.abs()
        return {
            "weights/l1": magnitude.sum(),
            "weights/l2": flat.square().sum().sqrt(),
            "weights/zero_fraction": (magnitude == 0).float().mean(),
            "weights/near_zero_fraction": (magnitude < NEAR_ZERO).float().mean(),
        }


def data_loss(task: str, output: Tensor, target: Tensor, target_std: Tensor | None = None) -> Tensor:
    """Cross-entropy, or the mean squared error; with ``target_std`` (the model is a
    :class:`~reglab.models.TargetScale`) in units of the training targets' standard deviation
    (``mean(((output - target) / std)^2)`` = the MSE of the inner network on standardized
    targets). One sample batch of one model; a stacked fit maps it over its members."""
    if task == CLASSIFICATION:
        return F.cross_entropy(output, target)
    if target_std is not None:
        return F.mse_loss(output / target_std, target / target_std)
    return F.mse_loss(output, target)


def stage_metrics(task: str, n_outputs: int) -> torchmetrics.MetricCollection:
    if task == CLASSIFICATION:
        k = n_outputs
        return torchmetrics.MetricCollection(
            {
                "acc": torchmetrics.Accuracy(task="multiclass", num_classes=k),
                "f1": torchmetrics.F1Score(task="multiclass", num_classes=k, average="macro"),
                "ece": torchmetrics.CalibrationError(task="multiclass", num_classes=k, n_bins=15),
            }
        )
    return torchmetrics.MetricCollection(
        {
            "mse": torchmetrics.MeanSquaredError(),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        }
    )


class QuickHookNames(L.LightningModule):
    """A LightningModule on which Lightning's ``_current_fx_name``, set around every hook call
    (~50 times a training step, ~100 for a stack), is a plain attribute: a string, so it skips
    ``nn.Module.__setattr__``'s parameter / buffer / submodule bookkeeping (2 us -> 0.3 us a
    call). Relies on Lightning setting that attribute: pinned by
    tests/test_lightning_contract.py. Both engines' modules are these."""

    def __setattr__(self, name: str, value) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class RegularizedModule(QuickHookNames):
    """Trains ``model`` on ``task`` with ``regularizer``'s penalty added to the loss.

    The gradient of ``data_loss + penalty`` is formed in two parts: autograd
    differentiates the data loss, and a regularizer that knows its own gradient
    (:func:`reglab.regularizers.adds_own_gradient`) adds it to ``.grad`` in
    ``on_before_optimizer_step``, once per optimizer step, after gradient accumulation
    and mixed-precision unscaling and before gradient clipping, where autograd's would
    be. Other regularizers' penalties are added to the loss.
    """

    def __init__(
        self,
        model: nn.Module,
        regularizer: Regularizer,
        optimizer: OptimizerFactory,
        task: str,
        n_outputs: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.regularizer = regularizer
        self.optimizer_factory = optimizer
        self.task = task
        self.penalized = regularizer.select(model)
        self.penalty_in_graph = regularizer.in_loss and not adds_own_gradient(regularizer)
        self.penalty_by_hook = regularizer.in_loss and not self.penalty_in_graph
        self.weights = select_weights(model)
        self.val_metrics = stage_metrics(task, n_outputs).clone(prefix="val/")
        self.test_metrics = stage_metrics(task, n_outputs).clone(prefix="test/")
        self.history: dict[str, list[float]] = defaultdict(list)
        self.register_buffer("_train_sums", torch.zeros(TRAIN_COUNT + 1), persistent=False)
        self.register_buffer("_eval_sums", torch.zeros(EVAL_COUNT + 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def data_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """:func:`data_loss` of this module's task (and target scale)."""
        return data_loss(
            self.task, output, target, self.model.std if isinstance(self.model, TargetScale) else None
        )

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        output = self.model(x)
        data_loss = self.data_loss(output, y)
        n = len(y)
        self._train_sums[TRAIN_LOSS_SUM].add_(data_loss.detach() * n)
        if self.task == CLASSIFICATION:
            self._train_sums[TRAIN_CORRECT].add_((output.detach().argmax(dim=1) == y).sum())
        self._train_sums[TRAIN_COUNT].add_(n)
        if self.penalty_in_graph:
            return data_loss + self.regularizer.penalty(self.penalized)
        return data_loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.penalty_by_hook:
            self.regularizer.add_gradient(self.penalized)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """The optimizer's step, then the regularizer's (proximal operator or constraint)
        with the learning rate of the first parameter group (the penalized weights')."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.regularizer.after_step(self.penalized, optimizer.param_groups[0]["lr"])

    def on_train_epoch_start(self) -> None:
        self._train_sums.zero_()

    def on_train_epoch_end(self) -> None:
        sums = self._summed_over_processes(self._train_sums)
        means = sums / sums[TRAIN_COUNT]
        data_loss = means[TRAIN_LOSS_SUM]
        with torch.no_grad():
            penalty = self.regularizer.penalty(self.penalized).to(means)
        metrics = {"train/loss": data_loss + penalty, "train/data_loss": data_loss, "train/penalty": penalty}
        if self.task == CLASSIFICATION:
            metrics["train/acc"] = means[TRAIN_CORRECT]
        metrics.update(weight_statistics(self.weights))
        metrics.update(self.regularizer.metrics(self.penalized))
        self._publish(metrics)

    def _summed_over_processes(self, sums: Tensor) -> Tensor:
        """Epoch sums over all processes of a distributed run (a no-op on one device);
        torchmetrics objects synchronize themselves."""
        if self.trainer.world_size == 1:
            return sums
        return self.trainer.strategy.reduce(sums.clone(), reduce_op="sum")

    def _publish(self, metrics: dict[str, Tensor]) -> None:
        """Hand one epoch's metrics to the callbacks and the logger.

        Early stopping and checkpointing read ``trainer.callback_metrics``; the logger gets
        one call per epoch with the epoch as step. This replaces ``self.log``, whose
        per-call bookkeeping costs milliseconds (measured: ~18 ms for 8 metrics per
        epoch on 2 CPU cores), which would dominate small full-batch runs. Relies on
        ``EarlyStopping`` / ``ModelCheckpoint`` reading ``trainer.callback_metrics`` and on
        the logger's ``log_metrics``: pinned by tests/test_lightning_contract.py.
        """
        self.trainer.callback_metrics.update(metrics)
        numbers = torch.stack([v.detach().float() for v in metrics.values()]).tolist()  # one sync
        values = dict(zip(metrics, numbers, strict=True))
        for key, value in values.items():
            self.history[key].append(value)
        if self.logger is not None:
            self.logger.log_metrics(values, step=self.current_epoch)

    def _eval_step(self, batch: tuple[Tensor, Tensor], metrics: torchmetrics.MetricCollection) -> None:
        x, y = batch
        output = self.model(x)
        loss = self.data_loss(output, y)
        self._eval_sums.add_(torch.stack((loss.detach() * len(y), loss.new_tensor(len(y)))))  # slot order
        if self.task == CLASSIFICATION:
            output = output.softmax(dim=1)
        elif y.shape[1] == 1:
            output, y = output.squeeze(1), y.squeeze(1)
        metrics.update(output, y)

    def _eval_epoch_end(self, stage: str, metrics: torchmetrics.MetricCollection) -> None:
        values = metrics.compute()
        sums = self._summed_over_processes(self._eval_sums)
        values[f"{stage}/loss"] = sums[EVAL_LOSS_SUM] / sums[EVAL_COUNT]
        if stage == "test":
            self.log_dict(values, sync_dist=True)  # once per run; trainer.test() returns these
        elif not self.trainer.sanity_checking:
            self._publish(values)
        metrics.reset()
        self._eval_sums.zero_()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val", self.val_metrics)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test", self.test_metrics)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Two parameter groups: the weights :func:`~reglab.regularizers.select_weights`
        selects (``ndim >= 2``, not normalization parameters), which get the optimizer's
        ``weight_decay`` (decoupled for AdamW, coupled for SGD / Adam), and the rest (biases,
        normalization parameters), which get none; the stacked engine's groups are these."""
        decayed = {id(p) for p in self.weights}
        groups = [
            {"params": [p for p in self.parameters() if id(p) in decayed]},
            {"params": [p for p in self.parameters() if id(p) not in decayed], "weight_decay": 0.0},
        ]
        return self.optimizer_factory([g for g in groups if g["params"]])
