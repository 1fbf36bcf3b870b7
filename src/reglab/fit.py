"""Fitting and testing one module under Lightning's Trainer, and what the fit learned:
the per-epoch history (:class:`FitRecord`), the best epoch and generalization gaps
(:func:`fit_summary`), the model error on synthetic designs (:func:`model_error`)."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from reglab.errors import DivergedError
from reglab.recovery import design_recovery
from reglab.timing import span

log = logging.getLogger("reglab.pipeline")


def _quiet_lightning() -> None:
    """Hide Lightning's start-up banner (accelerator lines, tips); warnings still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    # on a machine with SLURM's client tools, Lightning suggests srun for every local run
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")


def fit_and_test(cfg, module, datamodule, callbacks, tracked, run_dir: Path) -> dict[str, float]:
    """Fit ``module`` on the data under the ``trainer`` config, test the best epoch's
    weights, and return (and log to ``tracked``) the test metrics with the fit's summary."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from reglab.build import instantiate
    from reglab.tracking.epoch_logger import EpochMetricsLogger

    logger = EpochMetricsLogger(tracked) if tracked is not None else False
    precision = supported_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    recorder = FitRecord(run_dir / "fit_record.json")
    _quiet_lightning()
    trainer = instantiate(
        cfg.trainer,
        "trainer",
        callbacks=[*callbacks, recorder],
        logger=logger,
        default_root_dir=str(run_dir),
        enable_checkpointing=checkpointing,
        **({"precision": precision} if precision is not None else {}),
    )
    started = time.perf_counter()
    with span("fit"):
        trainer.fit(
            module,
            train_dataloaders=datamodule.train_dataloader(),
            val_dataloaders=datamodule.val_dataloader(),
        )
    fit_seconds = time.perf_counter() - started

    _raise_if_diverged(trainer)
    with span("test"):
        tested = trainer.test(
            module,
            dataloaders=datamodule.test_dataloader(),
            ckpt_path=_best_checkpoint(callbacks),
            verbose=False,
        )

    if tracked is not None:
        with span("logging"):
            logger.flush()
    return record_test(module.model, datamodule, tested, recorder.read(), fit_seconds, tracked)


def record_test(
    model, datamodule, tested: list[dict], record: dict, fit_seconds: float, tracked
) -> dict[str, float]:
    """The run's final metrics: ``trainer.test``'s (``tested``) and the fit's summary (from
    the :class:`FitRecord` contents ``record``, the tested model and the data), logged to
    ``tracked``; shared by the sequential and the stacked (:mod:`reglab.stacked`) fits."""
    summary = fit_summary(record["history"], record.get("selection"))
    summary["fit/epochs"] = float(record["epochs"])
    summary["fit/stopped_early"] = float(record["stopped_early"])
    summary["fit/seconds"] = fit_seconds
    clean = getattr(datamodule, "clean_targets", {}).get("test")
    if clean is not None:
        summary["test/model_error"] = model_error(model, datamodule.tensors["test"][0], clean)
    summary.update(tested_weight_statistics(model))
    summary.update(replication_sizes(datamodule))
    summary.update(design_recovery(model, datamodule))
    if tracked is not None:
        with span("logging"):
            tracked.log_metrics(summary)
    metrics = {k: float(v) for k, v in tested[0].items()} if tested else {}
    metrics.update(summary)
    log.debug("final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics


def replication_sizes(datamodule) -> dict[str, float]:
    """What the report's intervals over seeds need to know of the data: ``data/resplit``, 1
    when a seed re-splits one fixed set of samples (seeds overlap: a corrected resampled t),
    0 when it draws new samples (independent seeds), and ``data/n_train`` / ``data/n_test``
    (:mod:`reglab.report.decisions`)."""
    tensors = getattr(datamodule, "tensors", {})
    sizes = {
        f"data/n_{split}": float(len(tensors[split][1])) for split in ("train", "test") if split in tensors
    }
    replication = getattr(datamodule, "replication", None)
    if replication is not None:
        sizes["data/resplit"] = float(replication == "resplit")
    return sizes


def tested_weight_statistics(model) -> dict[str, float]:
    """``best/weights/...``: norms and sparsity (:func:`reglab.module.weight_statistics`) of
    the weights that were tested (the best epoch's), next to the test metrics they explain;
    ``weights/...`` is the per-epoch history of the weights as they were trained."""
    from reglab.module import weight_statistics
    from reglab.regularizers import select_weights

    return {f"best/{key}": float(value) for key, value in weight_statistics(select_weights(model)).items()}


def _best_checkpoint(callbacks) -> str | None:
    """The file ``trainer.test`` should load: none when :class:`BestWeights` has put the
    best weights back into the module, else a ``ModelCheckpoint``'s best file, if any."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from reglab.best_weights import BestWeights

    if any(isinstance(c, BestWeights) for c in callbacks):
        return None
    checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    return (checkpoint.best_model_path or None) if checkpoint is not None else None


class FitRecord(Callback):
    """Writes what the fit learned (per-epoch history, epochs trained, early stop, which epoch
    is tested and on which monitor it was chosen) to a JSON file from the global-zero process,
    so the launching process gets it back also when the fit ran in spawned workers
    (``ddp_spawn``), whose module state is not returned."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.validation_epochs: list[int] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self.validation_epochs = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validation_epochs.append(trainer.current_epoch)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        from lightning.pytorch.callbacks import EarlyStopping

        from reglab.best_weights import BestWeights

        stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
        stopped_early = bool(stopper is not None and stopper.stopped_epoch > 0)
        best = next((c for c in trainer.callbacks if isinstance(c, BestWeights)), None)
        selection = tested_selection(
            self.validation_epochs,
            best.best_epoch if best is not None else None,
            best.monitor if best is not None else None,
            best.mode if best is not None else "min",
        )
        self.write(dict(pl_module.history), trainer.current_epoch, stopped_early, selection)

    def write(
        self, history: dict[str, list[float]], epochs: int, stopped_early: bool, selection: dict | None = None
    ) -> dict:
        record = {"history": history, "epochs": epochs, "stopped_early": stopped_early}
        if selection is not None:
            record["selection"] = selection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(record))
        return record

    def read(self) -> dict:
        return json.loads(self.path.read_text())


def tested_selection(
    validation_epochs: list[int], best_epoch: int | None, monitor: str | None, mode: str
) -> dict:
    """Which weights are tested and by what rule: ``{"monitor", "mode", "epoch",
    "validation_epochs"}``. With a best-epoch rule (:class:`~reglab.best_weights.BestWeights`)
    that kept an epoch, its monitor, mode and epoch; otherwise the last weights are tested:
    the last validated epoch, read on ``val/loss`` (lower is better)."""
    if monitor is None or best_epoch is None:
        last = validation_epochs[-1] if validation_epochs else None
        return {"monitor": "val/loss", "mode": "min", "epoch": last, "validation_epochs": validation_epochs}
    return {"monitor": monitor, "mode": mode, "epoch": best_epoch, "validation_epochs": validation_epochs}


def supported_precision(precision, accelerator) -> str | None:
    """``bf16-mixed`` on a GPU without bf16 support falls back to ``16-mixed``, with a warning."""
    if precision is None or str(precision) != "bf16-mixed" or str(accelerator) not in ("gpu", "cuda"):
        return None if precision is None else str(precision)
    if torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    log.warning("this GPU has no bf16 support: trainer.precision falls back from bf16-mixed to 16-mixed")
    return "16-mixed"


def fit_summary(history: dict[str, list[float]], selection: dict | None = None) -> dict[str, float]:
    """The tested epoch and what it scored, and the generalization gap there.

    The tested epoch ``e`` is the one whose weights are tested (``selection``, see
    :func:`tested_selection`: the best-epoch rule's, else the last); without a ``selection``
    (a record written before it existed) the epoch of lowest ``val/loss``, first of ties.
    ``fit/best_epoch`` = e, ``fit/best_val_loss`` = val/loss at e, ``fit/selection_score`` =
    the selection monitor at e (what a study selects tuned settings on, with the monitor's
    mode), ``gap/loss`` = val/loss - train/data_loss and, for classification, ``gap/acc`` =
    train/acc - val/acc at e (positive = overfitting; train metrics are epoch means with
    dropout active)."""
    val_loss = history.get("val/loss", [])
    if not val_loss:
        return {}
    if selection is None or selection.get("epoch") is None:
        position = min(range(len(val_loss)), key=val_loss.__getitem__)
        epoch, monitor = position, "val/loss"
    else:
        epoch, monitor = int(selection["epoch"]), selection["monitor"]
        validated = selection.get("validation_epochs") or list(range(len(val_loss)))
        position = validated.index(epoch) if epoch in validated else len(val_loss) - 1
    summary = {"fit/best_epoch": float(epoch), "fit/best_val_loss": val_loss[position]}
    if len(history.get(monitor, [])) > position:
        summary["fit/selection_score"] = history[monitor][position]
    if len(history.get("train/data_loss", [])) > epoch:
        summary["gap/loss"] = val_loss[position] - history["train/data_loss"][epoch]
    if len(history.get("train/acc", [])) > epoch and len(history.get("val/acc", [])) > position:
        summary["gap/acc"] = history["train/acc"][epoch] - history["val/acc"][position]
    return summary


@torch.no_grad()
def model_error(model: torch.nn.Module, x: torch.Tensor, clean_target: torch.Tensor) -> float:
    """Mean squared distance between predictions and the noise-free target (known for
    synthetic designs): the test MSE minus the irreducible noise."""
    model.eval()
    return float((model(x) - clean_target.to(x.dtype)).square().mean())


def _raise_if_diverged(trainer) -> None:
    """:class:`DivergedError` when a :class:`~reglab.divergence.DivergenceGuard` stopped the
    fit, or (with or without one) a loss is not finite
    (:func:`~reglab.divergence.not_finite_at_end`)."""
    from reglab.divergence import FINAL, DivergenceGuard, not_finite_at_end

    for guard in (c for c in trainer.callbacks if isinstance(c, DivergenceGuard)):
        if guard.reason is not None:
            raise DivergedError(guard.reason)
    metrics = trainer.callback_metrics
    reason = not_finite_at_end({k: float(metrics[k]) for k in FINAL if k in metrics}, trainer.current_epoch)
    if reason is not None:
        raise DivergedError(reason)
