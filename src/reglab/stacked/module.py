"""The LightningModule of a stack: every member's ``data loss + penalty``, in one step.

The template model is called once per member through :func:`torch.func.vmap` over
:func:`torch.func.functional_call` with the member's parameters and buffers (its slice of
the stacked tensors): the forward of each member is the code of :mod:`reglab.models`, batch
norm keeps each member's running statistics, dropout draws each member's masks at its own
rate from its own seed (:class:`~reglab.dropout.SeededDropout`: the masks of its sequential
run, whatever it is stacked with; no global random state is read inside the vmap). The loss
is the sum of the members' data losses (:func:`reglab.module.data_loss` per member), so each
member's gradient is its own. Each member's regularizer is its own :mod:`reglab.regularizers`
object. After backward
the gradients of the members whose penalty's gradient is the elastic net's (``none``,
``l1``, ``l2``, ``elastic``: :func:`~reglab.regularizers.elastic_gradient`) are added for all
members at once, by :func:`~reglab.regularizers.add_elastic_gradient` (the code of their own
``add_gradient``) with per-member coefficients; any other penalty's gradient, and every
proximal step or constraint after the optimizer's step (with the member's learning rate),
is its regularizer's method applied to the member's slice of the penalized weights.

Per epoch the module records each member's metrics under the names its sequential run
uses (:mod:`reglab.module`), in float32 as that run's history has them, and applies each
member's rules to its values at full precision (each metric in its own dtype, as the
sequential run's callbacks read them): the best epoch by the member's own
:class:`~reglab.best_weights.BestWeights` (whose best epoch's state it keeps), divergence by
its own :class:`~reglab.divergence.DivergenceGuard`, early stopping by its own Lightning
``EarlyStopping`` (:mod:`reglab.stacked.callbacks`). The members that stopped (early
stopping, divergence) leave: their slices are cut out of the parameters, buffers, optimizer
state and batches, so a stack costs what its training members cost.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from reglab.best_weights import BestWeights
from reglab.data import CLASSIFICATION
from reglab.divergence import DivergenceGuard
from reglab.models import TargetScale
from reglab.module import (
    EVAL_COUNT,
    EVAL_LOSS_SUM,
    TRAIN_CORRECT,
    TRAIN_COUNT,
    TRAIN_LOSS_SUM,
    QuickHookNames,
    data_loss,
    stage_metrics,
    weight_statistics,
)
from reglab.regularizers import add_elastic_gradient, elastic_gradient, select_weights
from reglab.stacked.members import Member, StackedState
from reglab.stacked.optim import KINDS, StackedOptimizer

log = logging.getLogger("reglab")


@dataclass
class StackSettings:
    """What the members share: the budget and the optimizer."""

    stack_id: str
    max_epochs: int
    min_epochs: int
    optimizer: dict
    progress_every: int = 1  # epochs between progress lines


class StackedModule(QuickHookNames):
    """Trains the members of a stack together; see the module docstring."""

    def __init__(self, state: StackedState, members: list[Member], settings: StackSettings) -> None:
        super().__init__()
        first = members[0].components.datamodule
        self.task, self.settings, self.members = first.task, settings, members
        self._template = [state.template]  # not a submodule: functional_call supplies its tensors
        self.param_names, self.buffer_names = list(state.params), list(state.buffers)
        self.stacked = nn.ParameterList([nn.Parameter(t.clone()) for t in state.params.values()])
        for i, tensor in enumerate(state.buffers.values()):
            self.register_buffer(f"stacked_buffer_{i}", tensor.clone())
        self.decayed, self.penalized = state.decayed, state.penalized
        weights = {id(p) for p in select_weights(state.template)}
        self.weight_names = [n for n, p in state.template.named_parameters() if id(p) in weights]
        self.scaled = isinstance(state.template, TargetScale)
        self.regularizers = [m.components.regularizer for m in members]
        self.val_metrics = [stage_metrics(self.task, first.n_outputs).clone(prefix="val/") for _ in members]
        self.active = list(range(len(members)))
        self.histories = [defaultdict(list) for _ in members]
        self.history_epochs = [defaultdict(list) for _ in members]
        self.best: list[BestWeights | None] = [m.callback(BestWeights) for m in members]
        self.guards: list[DivergenceGuard | None] = [m.callback(DivergenceGuard) for m in members]
        self.want_stop = [False] * len(members)
        self.epochs: list[int | None] = [None] * len(members)
        self.last_values: list[dict[str, float]] = [{} for _ in members]  # full precision
        self.latest_val: dict[str, Tensor] = {}  # the active members' last validation, full precision
        self.loaders: list = []  # the StackedBatches to cut when members leave
        self._views: list[list[Tensor]] = []
        self._forward = vmap(self._member_forward, randomness="error")  # masks: reglab.dropout
        self._started = time.perf_counter()

    # -- the batched forward and loss -------------------------------------------------------
    def _member_forward(self, params: dict, buffers: dict, x: Tensor) -> Tensor:
        return functional_call(self._template[0], (params, buffers), (x,))

    def stacked_buffers(self) -> dict[str, Tensor]:
        return {name: getattr(self, f"stacked_buffer_{i}") for i, name in enumerate(self.buffer_names)}

    def forward(self, x: Tensor) -> Tensor:
        template = self._template[0]
        if template.training != self.training:  # Lightning restores modes without calling train()
            template.train(self.training)
        return self._forward(
            dict(zip(self.param_names, self.stacked, strict=True)), self.stacked_buffers(), x
        )

    def member_losses(self, output: Tensor, target: Tensor) -> Tensor:
        """Each member's :func:`~reglab.module.data_loss` on its batch, shape ``(K,)``."""
        if self.scaled:
            std = self.stacked_buffers()["std"]
            return vmap(partial(data_loss, self.task))(output, target, std)
        return vmap(partial(data_loss, self.task))(output, target)

    # -- training ---------------------------------------------------------------------------
    def on_train_start(self) -> None:
        self._build_views()

    def _build_views(self) -> None:
        """Per active member, views of its slice of each penalized weight (what its
        regularizer sees), and how each member's penalty gradient is added; rebuilt when the
        stack is cut."""
        stacked = dict(zip(self.param_names, self.stacked, strict=True))
        self._views = [[stacked[n].detach()[p] for n in self.penalized] for p in range(len(self.active))]
        self._plan_penalty_gradients()

    def _plan_penalty_gradients(self) -> None:
        """Members whose penalty's gradient is the elastic net's
        (:func:`~reglab.regularizers.elastic_gradient`) get it in one call over the stacked
        weights with per-member coefficients (:func:`~reglab.regularizers.add_elastic_gradient`,
        the code their own ``add_gradient`` runs); proximal members add nothing; any other
        regularizer in the loss (one that adds its own gradient: :mod:`reglab.stacked.plan`
        stacks no other) is called on its member's slices."""
        l1, l2, self._looped = [], [], []
        self._stepping = [
            p for p, member in enumerate(self.active) if self.regularizers[member].steps_after()
        ]
        for p, member in enumerate(self.active):
            regularizer = self.regularizers[member]
            coefficients = elastic_gradient(regularizer)
            l1.append(0.0 if coefficients is None else coefficients[0])
            l2.append(0.0 if coefficients is None else coefficients[1])
            if regularizer.in_loss and coefficients is None:
                self._looped.append(p)
        like = {"dtype": self.stacked[0].dtype, "device": self.stacked[0].device}
        self._elastic = (torch.tensor(l1, **like), torch.tensor(l2, **like)) if any(l1 + l2) else None

    def on_train_epoch_start(self) -> None:
        self._train_sums = self.stacked[0].new_zeros(len(self.active), TRAIN_COUNT + 1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        output = self(x)
        losses = self.member_losses(output, y)
        n = y.shape[1]
        sums = self._train_sums
        sums[:, TRAIN_LOSS_SUM] += losses.detach() * n
        if self.task == CLASSIFICATION:
            sums[:, TRAIN_CORRECT] += (output.detach().argmax(dim=2) == y).sum(dim=1)
        sums[:, TRAIN_COUNT] += n
        if self.current_epoch == 0 and batch_idx == 0:
            for p, value in enumerate(losses.detach().abs().tolist()):
                guard = self.guards[self.active[p]]
                if guard is not None and guard.reference is None:
                    guard.reference = value
        return losses.sum()

    def on_before_optimizer_step(self, optimizer) -> None:
        stacked = dict(zip(self.param_names, self.stacked, strict=True))
        weights = [stacked[n] for n in self.penalized]
        if self._elastic is not None:
            add_elastic_gradient(weights, *self._elastic)
        grads = [w.grad for w in weights]
        for p in self._looped:
            views = self._views[p]
            for view, grad in zip(views, grads, strict=True):
                view.grad = None if grad is None else grad[p]
            self.regularizers[self.active[p]].add_gradient(views)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self._stepping:  # the members whose regularizer steps after the optimizer
            rates = self.trainer.optimizers[0].lr.tolist()  # the members' own, after any cut
            for p in self._stepping:
                self.regularizers[self.active[p]].after_step(self._views[p], rates[p])

    def on_train_epoch_end(self) -> None:
        means = self._train_sums / self._train_sums[:, TRAIN_COUNT : TRAIN_COUNT + 1]
        per_member = []
        for p, member in enumerate(self.active):
            regularizer = self.regularizers[member]
            with torch.no_grad():
                penalty = regularizer.penalty(self._views[p]).to(means)
            metrics = {
                "train/loss": means[p, TRAIN_LOSS_SUM] + penalty,
                "train/data_loss": means[p, TRAIN_LOSS_SUM],
                "train/penalty": penalty,
            }
            if self.task == CLASSIFICATION:
                metrics["train/acc"] = means[p, TRAIN_CORRECT]
            metrics.update(weight_statistics(self._member_weights(p)))
            metrics.update(regularizer.metrics(self._views[p]))
            per_member.append(metrics)
        values = self._record(per_member)
        self._check_divergence("train/data_loss", values)
        if (self.current_epoch + 1) % self.settings.progress_every == 0:
            self._progress()
        self._let_stopped_members_leave()

    def _member_weights(self, position: int) -> list[Tensor]:
        stacked = dict(zip(self.param_names, self.stacked, strict=True))
        return [stacked[n].detach()[position] for n in self.weight_names]

    def _record(self, per_member: list[dict[str, Tensor]]) -> list[dict[str, float]]:
        """Append each active member's metrics to its history, in float32 as the sequential
        module records them, and return them at full precision (float64 holds each metric's
        own dtype exactly), what the rules compare; one host sync for all."""
        flat = [value.detach().reshape(()).double() for metrics in per_member for value in metrics.values()]
        full = torch.stack(flat).cpu() if flat else torch.zeros(0, dtype=torch.float64)
        numbers, rounded = iter(full.tolist()), iter(full.float().tolist())
        values = []
        for p, metrics in enumerate(per_member):
            member = self.active[p]
            for key in metrics:
                self.histories[member][key].append(next(rounded))
                self.history_epochs[member][key].append(self.current_epoch)
            values.append({key: next(numbers) for key in metrics})
            self.last_values[member].update(values[-1])
        return values

    # -- validation and test ----------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._eval_sums = self.stacked[0].new_zeros(len(self.active), EVAL_COUNT + 1)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Each active member's loss sums and metrics on its batch (its sequential run's
        :meth:`~reglab.module.RegularizedModule._eval_step`); also the test's step."""
        x, y = batch
        output = self(x)
        losses = self.member_losses(output, y)
        self._eval_sums[:, EVAL_LOSS_SUM] += losses.detach() * y.shape[1]
        self._eval_sums[:, EVAL_COUNT] += y.shape[1]
        for p, member in enumerate(self.active):
            out, target = output[p], y[p]
            if self.task == CLASSIFICATION:
                out = out.softmax(dim=1)
            elif target.shape[1] == 1:
                out, target = out.squeeze(1), target.squeeze(1)
            self.val_metrics[member].update(out, target)

    def _evaluated(self) -> list[dict[str, Tensor]]:
        """Each active member's metrics of the evaluation that ends (``val/...``), its metric
        objects reset for the next one."""
        per_member = []
        for p, member in enumerate(self.active):
            metrics = self.val_metrics[member].compute()
            metrics["val/loss"] = self._eval_sums[p, EVAL_LOSS_SUM] / self._eval_sums[p, EVAL_COUNT]
            per_member.append(metrics)
            self.val_metrics[member].reset()
        return per_member

    def on_validation_epoch_end(self) -> None:
        per_member = self._evaluated()
        if self.trainer.sanity_checking:
            return
        values = self._record(per_member)
        dtypes = {key: value.dtype for key, value in per_member[0].items()} if per_member else {}
        self.latest_val = {key: torch.tensor([v[key] for v in values], dtype=dtypes[key]) for key in dtypes}
        self._check_divergence("val/loss", values)
        self._keep_best(values)

    def load_best(self, positions: list[int]) -> None:
        """After the fit: the members at ``positions`` (positions into ``members``) become the
        stack, each with its best-epoch state (the state its sequential run tests)."""
        index = torch.tensor(positions, device=self.device)
        for i, name in enumerate(self.param_names):
            self.stacked[i] = nn.Parameter(self.best_states[name].index_select(0, index), requires_grad=False)
        for i, name in enumerate(self.buffer_names):
            setattr(self, f"stacked_buffer_{i}", self.best_states[name].index_select(0, index))
        self.active = list(positions)
        self.tested: dict[int, dict[str, float]] = {}

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        """``tested``: each member's test metrics, the values its sequential run's
        ``trainer.test`` returns (``test/...``)."""
        for member, metrics in zip(self.active, self._evaluated(), strict=True):
            self.tested[member] = {f"test/{key[4:]}": value.item() for key, value in metrics.items()}

    def _check_divergence(self, key: str, values: list[dict[str, float]]) -> None:
        """Each active member's ``key`` value to its own
        :class:`~reglab.divergence.DivergenceGuard` (if it has one)."""
        for p, member in enumerate(self.active):
            guard = self.guards[member]
            if guard is not None:
                guard.check(key, values[p][key], self.current_epoch)

    @property
    def failure(self) -> list[str | None]:
        """Each member's divergence reason (``None``: healthy, or no guard)."""
        return [None if guard is None else guard.reason for guard in self.guards]

    def _keep_best(self, values: list[dict[str, float]]) -> None:
        """Each active member's monitored value to its own
        :class:`~reglab.best_weights.BestWeights` (:meth:`~reglab.best_weights.BestWeights.consider`);
        the parameters and buffers of the members it improved are copied into their best slots."""
        improved = [
            p
            for p, member in enumerate(self.active)
            if (best := self.best[member]) is not None
            and best.consider(values[p].get(best.monitor, math.nan), self.current_epoch)
        ]
        if improved:
            self._store_states(improved)

    @property
    def best_epoch(self) -> list[int | None]:
        """Each member's best epoch (``None``: none kept, or no best-epoch rule)."""
        return [None if best is None else best.best_epoch for best in self.best]

    @property
    def best_score(self) -> list[float | None]:
        """Each member's best monitored value (``None`` without a best-epoch rule)."""
        return [None if best is None else best.best_score for best in self.best]

    def _store_states(self, positions: list[int]) -> None:
        index = torch.tensor(positions, device=self.device)
        members = torch.tensor([self.active[p] for p in positions], device=self.device)
        for name, tensor in self._current_tensors().items():
            self.best_states[name].index_copy_(0, members, tensor.detach().index_select(0, index))

    def _current_tensors(self) -> dict[str, Tensor]:
        return {**dict(zip(self.param_names, self.stacked, strict=True)), **self.stacked_buffers()}

    def on_fit_start(self) -> None:
        self.best_states = {name: t.detach().clone() for name, t in self._current_tensors().items()}
        for best in self.best:
            if best is not None:
                best.reset()
        self._started = time.perf_counter()

    # -- members leaving --------------------------------------------------------------------
    def _let_stopped_members_leave(self) -> None:
        epoch = self.current_epoch
        may_stop = epoch + 1 >= self.settings.min_epochs
        leaving = [
            p
            for p, member in enumerate(self.active)
            if self.failure[member] is not None or (self.want_stop[member] and may_stop)
        ]
        if not leaving:
            return
        self.finish_members(leaving, epoch + 1)
        keep = [p for p in range(len(self.active)) if p not in set(leaving)]
        if not keep:
            self.trainer.should_stop = True
            return
        self._cut(torch.tensor(keep, device=self.device))

    def finish_members(self, positions: list[int], epochs: int) -> None:
        """Members at ``positions`` stop after ``epochs`` epochs: a member that never
        improved its monitor (or with no best-epoch rule) keeps its last state."""
        last = [p for p in positions if self.best_epoch[self.active[p]] is None]
        if last:
            self._store_states(last)
        for p in positions:
            self.epochs[self.active[p]] = epochs

    def _cut(self, keep: Tensor) -> None:
        """Keep only the members at positions ``keep`` in every stacked tensor."""
        replaced = {}
        for i, old in enumerate(self.stacked):
            new = nn.Parameter(old.detach().index_select(0, keep))
            replaced[old] = new
            self.stacked[i] = new
        for i in range(len(self.buffer_names)):
            name = f"stacked_buffer_{i}"
            setattr(self, name, getattr(self, name).index_select(0, keep))
        self.trainer.optimizers[0].keep(keep, replaced)
        self.active = [self.active[p] for p in keep.tolist()]
        for loader in self.loaders:
            loader.active = torch.tensor(self.active)
        self._build_views()

    def on_fit_end(self) -> None:
        if self.active:
            self.finish_members(list(range(len(self.active))), self.trainer.current_epoch)

    def _progress(self) -> None:
        """One line per stack epoch: members training, best and median val/loss, elapsed."""
        losses = [self.histories[m]["val/loss"][-1] for m in self.active if self.histories[m].get("val/loss")]
        finite = [v for v in losses if math.isfinite(v)]
        shown = f"val/loss best {min(finite):.4f} median {statistics.median(finite):.4f}" if finite else ""
        log.info(
            "stack %s epoch %d/%d: %d/%d members training  %s  (%.1fs)",
            self.settings.stack_id,
            self.current_epoch + 1,
            self.settings.max_epochs,
            len(self.active),
            len(self.members),
            shown,
            time.perf_counter() - self._started,
        )

    # -- optimizer --------------------------------------------------------------------------
    def configure_optimizers(self) -> StackedOptimizer:
        """The optimizer of the members' config (two groups, as the sequential module's: the
        weights :func:`~reglab.regularizers.select_weights` selects get weight decay, the rest
        none), per-member values."""
        stacked = dict(zip(self.param_names, self.stacked, strict=True))
        groups = [
            {"params": [stacked[n] for n in self.param_names if n in self.decayed], "decay": True},
            {"params": [stacked[n] for n in self.param_names if n not in self.decayed], "decay": False},
        ]
        spec = self.settings.optimizer
        values = {
            key: torch.tensor(
                [m.optimizer_value(key, spec.get(key, 0.0)) for m in self.members], dtype=torch.float64
            )
            for key in ("lr", "weight_decay", "momentum")
        }
        shared = {k: spec[k] for k in ("betas", "eps", "dampening", "nesterov") if spec.get(k) is not None}
        return StackedOptimizer(
            [g for g in groups if g["params"]], KINDS[spec["_target_"]], **values, **shared
        )
