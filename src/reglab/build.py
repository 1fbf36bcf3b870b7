"""From a composed config to the objects of one job: data, regularizer, optimizer, model
and callbacks.

Every object is made by its own constructor, which checks its arguments
(:mod:`reglab.checks`); :func:`instantiate` unwraps Hydra's ``InstantiationException`` so
that such an error reaches the user as the constructor's one line. Data, regularizer and
model are built before Lightning and MLflow are imported, the callbacks (Lightning's) last,
and all before the store is touched: a bad value leaves no run.
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

from omegaconf import DictConfig

from reglab.errors import USER_ERRORS, ConfigError
from reglab.timing import span


def instantiate(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``; a constructor's user error comes out as
    itself, and an unknown argument as a :class:`ConfigError` naming ``key``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, USER_ERRORS):
            raise cause from None
        if isinstance(cause, TypeError) and "argument" in str(cause):
            target = node.get("_target_", "?")
            raise ConfigError(f"{key}: {target} does not accept these arguments: {cause}") from None
        raise


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators and set Lightning's seed variables (what
    Lightning's ``seed_everything(seed, workers=True)`` does, without importing Lightning),
    so the model's initialization is fixed before the training stack loads, and spawned
    processes (``ddp_spawn``) reseed as Lightning's would."""
    import numpy as np
    import torch

    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclasses.dataclass
class Components:
    """What one job trains: the data (set up), its model, regularizer, optimizer factory and
    callbacks (both engines read their rules from these objects)."""

    datamodule: Any
    model: Any
    regularizer: Any
    optimizer: Any
    callbacks: list


def build_components(cfg: DictConfig, callbacks: list | None = None) -> Components:
    """Data (loaded and split), regularizer, optimizer factory and the model for that data,
    the model initialized from ``cfg.seed`` and its dropout masks keyed by it; then the
    callbacks (:func:`build_callbacks`), unless the job's checks built them (``callbacks``)."""
    from reglab.dropout import key_dropouts

    datamodule = instantiate(cfg.data, "data")
    regularizer = instantiate(cfg.regularizer, "regularizer")
    optimizer = instantiate(cfg.optimizer, "optimizer")
    with span("data"):
        datamodule.setup("fit")
    seed_all(cfg.seed)
    model = build_model(cfg.model, datamodule)
    key_dropouts(model, cfg.seed)  # dropout masks from the run's own seed (reglab.dropout)
    callbacks = build_callbacks(cfg) if callbacks is None else callbacks
    return Components(datamodule, model, regularizer, optimizer, callbacks)


def build_model(model_cfg: DictConfig, datamodule) -> Any:
    """The ``model`` config instantiated with the sizes the data module inferred; wrapped in
    :class:`~reglab.models.TargetScale` when the data standardizes its regression targets."""
    model = instantiate(
        model_cfg,
        "model",
        in_features=datamodule.n_features,
        out_features=datamodule.n_outputs,
        input_shape=list(datamodule.input_shape),
    )
    scale = getattr(datamodule, "target_scale", None)
    if scale is None:
        return model
    from reglab.models import TargetScale

    return TargetScale(model, *scale)


def build_callbacks(cfg: DictConfig) -> list:
    """The ``callbacks`` group's objects, each checking its arguments in its constructor (a
    null entry is skipped)."""
    return [
        instantiate(node, f"callbacks.{name}")
        for name, node in (cfg.get("callbacks") or {}).items()
        if node is not None
    ]


def check_accelerator(cfg: DictConfig) -> None:
    """A GPU trainer on a machine without CUDA stops before anything is created."""
    import torch

    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is not available: torch.cuda.is_available() is False "
            "(no CUDA GPU or a CPU build of torch); allowed here: trainer=cpu or trainer=ddp_spawn"
        )
