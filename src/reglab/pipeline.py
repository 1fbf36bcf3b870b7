"""One training job: validate -> instantiate -> track -> fit -> test -> log.

The CLI (``python train.py``) and the Python API (:func:`run`) both end in
:func:`train`, so a notebook gets exactly what the command line gets.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from reglab.config import ConfigError, compose_with_choices, validate

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass
class Result:
    """What a job returns: final metrics, the MLflow run id and the trained model.

    ``model`` holds the weights of the best validation epoch (the ones tested); ``data``
    is the data module, whose ``tensors`` hold the exact (standardized) splits used.
    """

    metrics: dict[str, float]
    run_id: str | None
    model: torch.nn.Module
    data: object
    config: DictConfig
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)


def run_name(overrides: Sequence[str]) -> str:
    """``["regularizer=elastic", "dropout=0.3"]`` -> ``"regularizer=elastic,dropout=0.3"``."""
    shown = [o for o in overrides if not o.lstrip("+~").startswith(("paths.", "hydra."))]
    return ",".join(shown) or "default"


def run(overrides: Sequence[str] = (), callbacks: Sequence = ()) -> Result:
    """Train with the shipped config plus ``overrides`` (the CLI's syntax), from Python.

    ``callbacks`` are extra Lightning callbacks (e.g. a search's pruning callback).

    >>> result = reglab.run(["regularizer=l1", "trainer.max_epochs=5"])
    >>> result.metrics["test/acc"], result.run_id
    """
    cfg, choices = compose_with_choices(overrides)
    stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    run_dir = Path(cfg.paths.output_dir) / "api" / stamp
    return train(cfg, list(overrides), run_dir, choices, callbacks)


def train(
    cfg: DictConfig,
    overrides: Sequence[str],
    run_dir: Path,
    choices: dict[str, str] | None = None,
    extra_callbacks: Sequence = (),
) -> Result:
    """Run one job described by a composed config; see the module docstring.

    ``choices`` (the option of each config group) are logged as ``choice.<group>`` params.
    """
    from hydra.utils import instantiate

    validate(cfg)
    check_accelerator(cfg)
    import lightning as L

    from reglab.module import RegularizedModule

    _quiet_lightning()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = build_model(cfg.model, datamodule)
    module = RegularizedModule(
        model=model,
        regularizer=instantiate(cfg.regularizer),
        optimizer=instantiate(cfg.optimizer),
        task=datamodule.task,
        n_outputs=datamodule.n_outputs,
    )
    callbacks = [*_instantiate_callbacks(cfg, run_dir), *extra_callbacks]
    tracked = _start_tracking(cfg, overrides, choices or {}) if cfg.logger.enabled else None
    try:
        metrics = _fit_and_test(cfg, module, datamodule, callbacks, tracked, run_dir)
    except BaseException as error:
        if tracked is not None:
            tracked.fail(error)
        raise
    if tracked is not None:
        tracked.finish()
    return Result(
        metrics=metrics,
        run_id=tracked.run_id if tracked else None,
        model=module.model,
        data=datamodule,
        config=cfg,
        run_dir=run_dir,
        overrides=list(overrides),
        history=FitRecord(run_dir / "fit_record.json").read()["history"],
    )


def build_model(model_cfg: DictConfig, datamodule) -> torch.nn.Module:
    """The ``model`` config instantiated with the sizes the data module inferred."""
    from hydra.utils import instantiate

    return instantiate(
        model_cfg,
        in_features=datamodule.n_features,
        out_features=datamodule.n_outputs,
        input_shape=list(datamodule.input_shape),
    )


def config_hash(cfg: DictConfig) -> str:
    """Identity of what a job computes: the resolved config without where it writes
    (``paths``) or how it is tracked (``logger``). Equal hashes, equal results."""
    import hashlib
    import json

    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("paths", "logger", "resume"):
        resolved.pop(key, None)
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _quiet_lightning() -> None:
    """Hide Lightning's start-up banner (accelerator lines, tips); warnings still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")


def _instantiate_callbacks(cfg: DictConfig, run_dir: Path) -> list:
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        callback = instantiate(node)
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / "checkpoints")
        callbacks.append(callback)
        log.debug("callback %s: %r", name, callback)
    return callbacks


def _start_tracking(cfg: DictConfig, overrides: Sequence[str], choices: dict[str, str]):
    from reglab import tracking

    uri = tracking.resolve_tracking_uri(cfg.logger.tracking_uri, cfg.paths.output_dir)
    experiment_id = cfg.logger.get("experiment_id") or tracking.ensure_experiment(
        uri, cfg.logger.experiment_name, cfg.logger.artifact_location
    )
    tracked = tracking.TrackedRun(uri, experiment_id)
    tags = {"reglab.overrides": " ".join(overrides) or "(none)"}
    tags.update({str(k): str(v) for k, v in (cfg.logger.get("tags") or {}).items()})
    if cfg.logger.get("parent_run_id"):
        tags["mlflow.parentRunId"] = str(cfg.logger.parent_run_id)
    for key in ("sweep_id", "sweep_signature"):
        if cfg.logger.get(key):
            tags[f"reglab.{key}"] = str(cfg.logger[key])
    tags["reglab.config_hash"] = config_hash(cfg)
    commit = tracking.git_commit(cfg.paths.root_dir)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tracked.start(run_name(overrides), tags)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        params = tracking.flatten_config(resolved)
        params.update({f"choice.{group}": option for group, option in choices.items()})
        tracked.log_params(params)
        tracked.log_text(OmegaConf.to_yaml(resolved), "config.yaml")
    except BaseException as error:
        tracked.fail(error)
        raise
    log.info("MLflow run %s in %s", tracked.run_id, uri)
    return tracked


def _fit_and_test(cfg, module, datamodule, callbacks, tracked, run_dir: Path) -> dict[str, float]:
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint

    from reglab.epoch_logger import EpochMetricsLogger

    logger = EpochMetricsLogger(tracked) if tracked is not None else False
    precision = supported_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    recorder = FitRecord(run_dir / "fit_record.json")
    trainer = instantiate(
        cfg.trainer,
        callbacks=[*callbacks, recorder],
        logger=logger,
        default_root_dir=str(run_dir),
        enable_checkpointing=checkpointing,
        **({"precision": precision} if precision is not None else {}),
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_seconds = time.perf_counter() - started

    _raise_if_diverged(trainer)
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=_best_checkpoint(callbacks), verbose=False)

    record = recorder.read()
    summary = fit_summary(record["history"])
    summary["fit/epochs"] = float(record["epochs"])
    summary["fit/stopped_early"] = float(record["stopped_early"])
    summary["fit/seconds"] = fit_seconds
    clean = getattr(datamodule, "clean_targets", {}).get("test")
    if clean is not None:
        summary["test/model_error"] = model_error(module.model, datamodule.tensors["test"][0], clean)
    if tracked is not None:
        logger.flush()
        tracked.log_metrics(summary)
    metrics = {k: float(v) for k, v in tested[0].items()} if tested else {}
    metrics.update(summary)
    log.info("final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics


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
    """Writes what the fit learned (per-epoch history, epochs trained, early stop) to a
    JSON file from the global-zero process, so the launching process gets it back also
    when the fit ran in spawned workers (``ddp_spawn``), whose module state is not returned."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        from lightning.pytorch.callbacks import EarlyStopping

        stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "history": dict(pl_module.history),
            "epochs": trainer.current_epoch,
            "stopped_early": bool(stopper is not None and stopper.stopped_epoch > 0),
        }))

    def read(self) -> dict:
        return json.loads(self.path.read_text())


def check_accelerator(cfg: DictConfig) -> None:
    """A GPU trainer on a machine without CUDA stops before anything is created."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is not available: torch.cuda.is_available() is False "
            "(no CUDA GPU or a CPU build of torch); allowed here: trainer=cpu or trainer=ddp_spawn"
        )


def supported_precision(precision, accelerator) -> str | None:
    """``bf16-mixed`` on a GPU without bf16 support falls back to ``16-mixed``, with a warning."""
    if precision is None or str(precision) != "bf16-mixed" or str(accelerator) not in ("gpu", "cuda"):
        return None if precision is None else str(precision)
    if torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    log.warning("this GPU has no bf16 support: trainer.precision falls back from bf16-mixed to 16-mixed")
    return "16-mixed"


def fit_summary(history: dict[str, list[float]]) -> dict[str, float]:
    """Best epoch (lowest ``val/loss``, first of ties, as the checkpoint keeps it), its
    validation loss, and the generalization gap there: ``gap/loss`` = val/loss -
    train/data_loss and, for classification, ``gap/acc`` = train/acc - val/acc (positive
    = overfitting; train metrics are epoch means with dropout active)."""
    val_loss = history.get("val/loss", [])
    if not val_loss:
        return {}
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    summary = {"fit/best_epoch": float(best), "fit/best_val_loss": val_loss[best]}
    if len(history.get("train/data_loss", [])) > best:
        summary["gap/loss"] = val_loss[best] - history["train/data_loss"][best]
    if len(history.get("train/acc", [])) > best and len(history.get("val/acc", [])) > best:
        summary["gap/acc"] = history["train/acc"][best] - history["val/acc"][best]
    return summary


@torch.no_grad()
def model_error(model: torch.nn.Module, x: torch.Tensor, clean_target: torch.Tensor) -> float:
    """Mean squared distance between predictions and the noise-free target (known for
    synthetic designs): the test MSE minus the irreducible noise."""
    model.eval()
    return float((model(x) - clean_target.to(x.dtype)).square().mean())


def _raise_if_diverged(trainer) -> None:
    for key in ("train/loss", "val/loss"):
        value = trainer.callback_metrics.get(key)
        if value is not None and not torch.isfinite(value).all():
            raise DivergedError(
                f"{key} is {float(value)} at epoch {trainer.current_epoch}: training diverged "
                "(lower optimizer.lr or regularizer.strength)"
            )
