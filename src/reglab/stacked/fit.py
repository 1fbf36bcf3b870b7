"""Train one stack under Lightning's Trainer, then test every member and write the stack's
records."""

from __future__ import annotations

import functools
import logging
import time

from omegaconf import DictConfig

from reglab.errors import ConfigError, Interrupted, error_reason
from reglab.stacked.batches import StackedBatches
from reglab.stacked.members import Member, StackedState, build_state
from reglab.stacked.module import StackedModule, StackSettings
from reglab.stacked.records import RecordWriter, failure_of, member_record, write_records
from reglab.sweeps import outcomes
from reglab.timing import span

log = logging.getLogger("reglab")

MEMORY_SHARE = 0.8  # of the memory available, the most a stack may plan to use


def train_stack(
    members: list[Member], stack_id: str, max_members: int, writer: RecordWriter | None = None
) -> list[dict[str, float]]:
    """Train ``members`` as one stack, then test each member and write the stack's records
    (:func:`record_stack`): with a ``writer``, in its thread while the caller goes on (the next
    stack trains), else before returning. Returns each member's final metrics (none: FAILED),
    with a ``writer`` filled in once it has written them (:meth:`RecordWriter.wait`).

    A stack that would not fit in memory raises :class:`ConfigError` (naming
    ``hydra.launcher.max_members``) before training. An error while training fails every
    member with its reason; an interrupt while training, or testing here, records the members
    KILLED (outcome files; they have no MLflow run yet) and stops the sweep."""
    from reglab.fit import _quiet_lightning

    with span("stack"):  # the stack's set-up: its tensors, memory check, module and batches
        state = build_state(members)
        check_memory(state, members, max_members)
        module = StackedModule(state, members, _settings(members, stack_id))
        train = StackedBatches([m.components.datamodule.train_dataloader() for m in members], shuffle=True)
        val = StackedBatches([m.components.datamodule.val_dataloader() for m in members], shuffle=False)
        module.loaders = [train, val]
        stopping = _early_stopping(members)
        _quiet_lightning()
    log.info("stack %s: %d members (jobs %s)", stack_id, len(members), _numbers(members))
    try:
        trainer = _trainer(
            members[0].cfg, [stopping] if stopping else [], members[0].job_dir.parent / f".stack-{stack_id}"
        )
        started, started_ms = time.perf_counter(), int(time.time() * 1000)
        with span("fit"):
            trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
        seconds = time.perf_counter() - started
    except Interrupted as interrupted:
        record_all(members, "KILLED", str(interrupted))
        raise
    except Exception as error:  # every member FAILED with the reason; the sweep goes on
        log.exception("stack %s failed", stack_id)
        record_all(members, "FAILED", error_reason(error))
        return [{} for _ in members]
    log.info("stack %s trained in %.1fs (%d members)", stack_id, seconds, len(members))
    record = functools.partial(record_stack, module, state, stopping, seconds, started_ms)
    if writer is not None:
        return writer.submit(len(members), record)
    try:
        with span("records"):
            return record()
    except Interrupted as interrupted:
        record_all(members, "KILLED", str(interrupted))
        raise


def record_stack(
    module: StackedModule, state: StackedState, stopping, seconds: float, started_ms: int
) -> list[dict[str, float]]:
    """Test the members of a trained stack that did not fail, in one ``trainer.test``
    (:meth:`~reglab.stacked.module.StackedModule.load_best`), gather each member's records
    (:func:`~reglab.stacked.records.member_record`) and write the stack's
    (:func:`~reglab.stacked.records.write_records`); returns each member's final metrics. An
    error while testing fails every member with its reason, as one while training does."""
    members, stack_id = module.members, module.settings.stack_id
    try:
        with span("test"):
            tested = [p for p in range(len(members)) if failure_of(module, p) is None]
            if tested:
                module.load_best(tested)
                batches = StackedBatches(
                    [members[p].components.datamodule.test_dataloader() for p in tested], shuffle=False
                )
                tester = _trainer(members[0].cfg, [], members[0].job_dir.parent / f".stack-{stack_id}")
                tester.test(module, dataloaders=batches, verbose=False)
            records = [
                member_record(
                    position,
                    module,
                    state,
                    bool(stopping and stopping.stopped_epoch[position] > 0),
                    seconds,
                    started_ms,
                )
                for position in range(len(members))
            ]
    except Exception as error:
        log.exception("stack %s failed", stack_id)
        record_all(members, "FAILED", error_reason(error))
        return [{} for _ in members]
    write_records(stack_id, records)
    return [record.metrics for record in records]


def _settings(members: list[Member], stack_id: str) -> StackSettings:
    """What the members share, read from the first member's config (the others' are equal:
    their configs differ only in per-member knobs, :mod:`reglab.stacked.plan`)."""
    from reglab.progress import EpochSummary

    cfg = members[0].cfg
    summary = members[0].callback(EpochSummary)
    every = summary.every_n_epochs if summary is not None else cfg.trainer.get("check_val_every_n_epoch")
    return StackSettings(
        stack_id=stack_id,
        max_epochs=int(cfg.trainer.max_epochs),
        min_epochs=int(cfg.trainer.get("min_epochs") or 0),
        optimizer=dict(cfg.optimizer),
        progress_every=int(every or 1),
    )


def _early_stopping(members: list[Member]):
    """The members' own Lightning ``EarlyStopping`` objects, applied per member by one
    :class:`~reglab.stacked.callbacks.MemberEarlyStopping`; ``None`` without them."""
    from lightning.pytorch.callbacks import EarlyStopping

    from reglab.stacked.callbacks import MemberEarlyStopping

    stoppers = [m.callback(EarlyStopping) for m in members]
    return None if stoppers[0] is None else MemberEarlyStopping(stoppers)


def _trainer(cfg: DictConfig, callbacks: list, root) -> object:
    from reglab.build import instantiate

    return instantiate(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=False,
        default_root_dir=str(root),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def record_all(members: list[Member], status: str, reason: str) -> None:
    for member in members:
        outcomes.write_outcome(
            member.job_dir, job=member.num, status=status, overrides=member.overrides, reason=reason
        )


def _numbers(members: list[Member]) -> str:
    nums = [m.num for m in members]
    return (
        f"{nums[0]}..{nums[-1]}" if nums == list(range(nums[0], nums[-1] + 1)) else ",".join(map(str, nums))
    )


def check_memory(state: StackedState, members: list[Member], max_members: int) -> None:
    """Refuse a stack whose planned memory exceeds :data:`MEMORY_SHARE` of what is available:
    per member, 5 copies of the parameters (weights, gradients, two optimizer moments, best
    state), its data, and the activations of a training batch (forward and backward)."""
    import torch

    datamodule = members[0].components.datamodule
    bytes_per = 8 if str(members[0].cfg.trainer.get("precision")) in ("64", "64-true") else 4
    per_member = 5 * sum(t[0].numel() for t in state.params.values())
    per_member += sum(x.numel() for x, _ in datamodule.tensors.values())
    per_member += 3 * _activation_numel(state.template, datamodule)
    needed = per_member * bytes_per * len(members)
    device = str(members[0].cfg.trainer.get("accelerator", "cpu"))
    available = torch.cuda.mem_get_info()[0] if device in ("gpu", "cuda") else _available_ram()
    if needed > MEMORY_SHARE * available:
        raise ConfigError(
            f"a stack of {len(members)} members needs ~{needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB "
            f"available: lower hydra.launcher.max_members (now {max_members})"
        )


def _activation_numel(template, datamodule) -> int:
    """Elements of every module's output for one training batch (a forward with hooks)."""
    import torch

    sizes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for m in template.modules()
    ]
    batch = datamodule.batch_size or len(datamodule.tensors["train"][0])
    mode = template.training
    try:
        with torch.no_grad():
            template.eval()(datamodule.tensors["train"][0][:2])
    finally:
        template.train(mode)
        for hook in hooks:
            hook.remove()
    return sum(sizes) * batch // 2


def _available_ram() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
