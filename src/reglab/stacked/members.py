"""The members of a stack: each one job of the sweep, with its own knobs, and the stacked
tensors built from their models."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

from reglab.build import Components, build_model
from reglab.dropout import SeededDropout, key_dropouts
from reglab.regularizers import select_weights


@dataclasses.dataclass
class Member:
    """One job of a stack: its config, where it writes, and what :func:`reglab.pipeline.prepare`
    built for it (its data split, its initialized model, its regularizer)."""

    num: int
    cfg: DictConfig
    overrides: list[str]
    choices: dict[str, str]
    job_dir: Path
    components: Components
    job_return: Any = None  # Hydra's JobReturn of the job, completed once the stack is trained
    run_id: str | None = None  # its MLflow run, once recorded
    history: dict = dataclasses.field(default_factory=dict)  # its per-epoch metrics, once trained

    @property
    def dropout(self) -> float:
        return float(self.cfg.model.get("dropout", 0.0) or 0.0)

    def optimizer_value(self, key: str, default: float = 0.0) -> float:
        return float(self.cfg.optimizer.get(key, default) or 0.0)

    def callback(self, kind: type) -> Any:
        """The member's callback of class ``kind`` (built from its ``callbacks`` group, checked
        by its constructor: :func:`reglab.build.build_callbacks`), or ``None``; the stacked
        fit applies the member's rules through these objects."""
        return next((c for c in self.components.callbacks if isinstance(c, kind)), None)


@dataclasses.dataclass
class StackedState:
    """A template model (one member's architecture, with every dropout layer any member has)
    and the members' parameters and buffers stacked along a new leading axis, by template name:
    a dropout layer's ``p`` and ``key`` are each member's rate and seed (0 for a member without
    dropout), so its masks are those of its own run (:mod:`reglab.dropout`)."""

    template: nn.Module
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    decayed: set[str]  # params that get the optimizer's weight_decay (select_weights, as a member's)
    penalized: list[str]  # params the regularizer selects (same selection for every member)
    dropouts: list[str]  # the dropout layers' p and key buffers (filled per member, not a model's state)

    def member_state(self, tensors: dict[str, Tensor], position: int, model: nn.Module) -> dict[str, Tensor]:
        """The state dict of ``model`` (member ``position``'s) from stacked ``tensors``: the
        template's parameters and buffers map, in order, to the model's (its dropout layers,
        present or not, hold none)."""
        names = [n for n, _ in model.named_parameters()] + _state_buffers(model)
        mine = [*self.params, *(n for n in self.buffers if n not in self.dropouts)]
        return {name: tensors[t][position].clone() for name, t in zip(names, mine, strict=True)}


def build_state(members: list[Member]) -> StackedState:
    """Stack the members' initialized models into one :class:`StackedState`."""
    first = members[0]
    model_cfg = first.cfg.model.copy()
    if "dropout" in model_cfg:
        with open_dict(model_cfg):
            model_cfg.dropout = max(m.dropout for m in members)
    template = build_model(model_cfg, first.components.datamodule)
    dropouts = key_dropouts(template, 0)
    models = [m.components.model for m in members]
    param_names = [n for n, _ in template.named_parameters()]
    buffer_names = [n for n, _ in template.named_buffers() if n not in dropouts]
    member_params = [list(model.named_parameters()) for model in models]
    member_buffers = [_named_state_buffers(model) for model in models]
    _check_shapes(template, param_names, buffer_names, member_params[0], member_buffers[0])
    params = {n: torch.stack([mp[i][1].detach() for mp in member_params]) for i, n in enumerate(param_names)}
    buffers = {n: torch.stack([mb[i][1] for mb in member_buffers]) for i, n in enumerate(buffer_names)}
    for name in dropouts:
        if name.endswith(".p"):
            buffers[name] = torch.tensor([m.dropout for m in members])  # the dtype of a model's own p
        else:
            buffers[name] = torch.tensor([int(m.cfg.seed) for m in members], dtype=torch.int64)
    selected = {id(p) for p in first.components.regularizer.select(template)}
    decayed = {id(p) for p in select_weights(template)}  # RegularizedModule.configure_optimizers' rule
    return StackedState(
        template=template,
        params=params,
        buffers=buffers,
        decayed={n for n, p in template.named_parameters() if id(p) in decayed},
        penalized=[n for n, p in template.named_parameters() if id(p) in selected],
        dropouts=dropouts,
    )


def _named_state_buffers(model: nn.Module) -> list[tuple[str, Tensor]]:
    buffers = dict(model.named_buffers())
    return [(name, buffers[name]) for name in _state_buffers(model)]


def _state_buffers(model: nn.Module) -> list[str]:
    """``model``'s buffer names but its dropout layers' (which a stack fills per member)."""
    layers = {name for name, m in model.named_modules() if isinstance(m, SeededDropout)}
    return [n for n, _ in model.named_buffers() if n.rpartition(".")[0] not in layers]


def _check_shapes(template, param_names, buffer_names, params, buffers) -> None:
    shapes = [tuple(p.shape) for p in dict(template.named_parameters()).values()]
    shapes += [tuple(dict(template.named_buffers())[n].shape) for n in buffer_names]
    member = [tuple(t.shape) for _, t in params] + [tuple(t.shape) for _, t in buffers]
    if shapes != member or len(param_names) != len(params):
        raise RuntimeError("stacked engine: the template's parameters do not match a member model's")
