"""Which jobs of a sweep can be trained together, and in which stacks.

Two jobs stack when their resolved configs are equal after removing the *stackable* knobs
(:data:`PER_MEMBER`: each member has its own value) and where they write or are tracked,
and the engine knows every part of them (:func:`why_not_stackable`). A job that cannot stack
runs on the ordinary path in the same sweep, with the reason logged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

# regularizer classes whose members stack with one another (strength, l1_ratio, mode per member)
ELASTIC_FAMILY = {
    "reglab.regularizers.NoPenalty",
    "reglab.regularizers.L1",
    "reglab.regularizers.L2",
    "reglab.regularizers.ElasticNet",
}
OWN_FAMILY = {"reglab.regularizers.GroupLasso", "reglab.regularizers.MaxNorm"}  # stack among themselves
MODELS = {"reglab.models.MLP", "reglab.models.LinearModel", "reglab.models.ConvNet"}
OPTIMIZERS = {
    "torch.optim.SGD": {"lr", "momentum", "dampening", "weight_decay", "nesterov"},
    "torch.optim.Adam": {"lr", "betas", "eps", "weight_decay"},
    "torch.optim.AdamW": {"lr", "betas", "eps", "weight_decay"},
}
CALLBACKS = {
    "lightning.pytorch.callbacks.EarlyStopping",
    "lightning.pytorch.callbacks.early_stopping.EarlyStopping",
    "reglab.best_weights.BestWeights",
    "reglab.progress.EpochSummary",
    "reglab.divergence.DivergenceGuard",
}
EARLY_STOPPING_KEYS = {
    "_target_",
    "monitor",
    "mode",
    "patience",
    "min_delta",
    "check_finite",
    "verbose",
    "strict",
}
PRECISIONS = {None, 32, 64, "32", "64", "32-true", "64-true"}
TRAINER_DEFAULTS = {  # keys the engine does not implement, and the values it accepts
    "strategy": {None, "auto"},
    "devices": {None, 1, "1", "auto"},
    "num_nodes": {None, 1},
    "accumulate_grad_batches": {None, 1},
    "gradient_clip_val": {None, 0},
    "val_check_interval": {None, 1},
    "limit_train_batches": {None, 1},
    "limit_val_batches": {None, 1},
    "max_steps": {None, -1},
}
# where a job writes, how it is tracked and studied: never part of what it computes
NOT_COMPUTED = ("paths", "logger", "study", "resume", "hydra")
PER_MEMBER = (
    "seed",
    "dropout",
    "data.seed",
    "model.dropout",
    "regularizer",
    "optimizer.lr",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "callbacks.early_stopping.patience",
    "callbacks.early_stopping.min_delta",
)


def why_not_stackable(config: dict[str, Any]) -> str | None:
    """Why the engine cannot train this job in a stack (``None``: it can), from its config's
    resolved values (:func:`reglab.config.checked_values`)."""
    model = config["model"].get("_target_")
    if model not in MODELS:
        return f"model {model} is not one the stacked engine batches ({', '.join(sorted(MODELS))})"
    regularizer = config["regularizer"].get("_target_")
    if regularizer not in ELASTIC_FAMILY | OWN_FAMILY:
        return f"regularizer {regularizer} is not a built-in one"
    optimizer = config["optimizer"]
    allowed = OPTIMIZERS.get(optimizer.get("_target_"))
    if allowed is None:
        return f"optimizer {optimizer.get('_target_')} is not SGD, Adam or AdamW"
    extra = sorted(k for k in optimizer if not k.startswith("_") and k not in allowed and optimizer[k])
    if extra:
        return f"optimizer option(s) {', '.join(extra)} are not implemented by the stacked engine"
    return (
        _trainer_reason(config["trainer"])
        or _callbacks_reason(config.get("callbacks") or {})
        or _data_reason(config)
    )


def _trainer_reason(trainer: dict) -> str | None:
    if trainer.get("precision") not in PRECISIONS:
        return f"trainer.precision={trainer.get('precision')} (the stacked engine runs 32 or 64)"
    for key, accepted in TRAINER_DEFAULTS.items():
        if trainer.get(key) not in accepted:
            return f"trainer.{key}={trainer.get(key)} is not implemented by the stacked engine"
    return None


def _callbacks_reason(callbacks: dict) -> str | None:
    for name, node in callbacks.items():
        if node is None:
            continue
        target = node.get("_target_")
        if target not in CALLBACKS:
            return f"callbacks.{name} ({target}) is not one the stacked engine runs per member"
        if "EarlyStopping" in target:
            extra = sorted(k for k in node if k not in EARLY_STOPPING_KEYS and node[k] is not None)
            if extra:
                return f"callbacks.{name}: {', '.join(extra)} are not implemented by the stacked engine"
    return None


def _data_reason(config: dict) -> str | None:
    from hydra.utils import get_class

    from reglab.data.in_memory import ArrayDataModule

    target = config["data"].get("_target_")
    try:
        if issubclass(get_class(target), ArrayDataModule):
            return None
    except Exception:  # an unknown class: its own error comes when the job runs
        pass
    return f"data {target} is not an in-memory data set"


def stack_key(values: dict[str, Any]) -> str:
    """Equal for two jobs that may share a stack, from their configs' resolved values
    (:func:`reglab.config.checked_values`): the values without the per-member knobs (the
    regularizer reduced to its family and penalized-weight selection) and without what is not
    computed."""
    config = copy.deepcopy(values)
    for key in NOT_COMPUTED:
        config.pop(key, None)
    regularizer = config["regularizer"]
    target = regularizer.get("_target_")
    family = "elastic" if target in ELASTIC_FAMILY else target
    for path in PER_MEMBER:
        _pop(config, path)
    config["regularizer"] = {"family": family, "include_bias": regularizer.get("include_bias", False)}
    return json.dumps(config, sort_keys=True, default=str)


def _pop(config: dict, path: str) -> None:
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(last, None)


def stacks(keys: Sequence[str], max_members: int) -> list[list[int]]:
    """Job positions grouped by key (in order of first appearance), each group cut into stacks
    of at most ``max_members``, as even as possible (``10`` jobs, at most ``4``: ``4, 3, 3``)."""
    groups: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    result = []
    for members in groups.values():
        count = -(-len(members) // max_members)
        size, larger = divmod(len(members), count)
        start = 0
        for i in range(count):
            end = start + size + (i < larger)
            result.append(members[start:end])
            start = end
    return result
