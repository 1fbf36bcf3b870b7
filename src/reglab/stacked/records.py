"""After a stack is trained: each member tested, then the stack's records written at once.

The members that did not fail are tested together, each with its best-epoch state, by one
``trainer.test`` of the stack (:meth:`~reglab.stacked.module.StackedModule.load_best`: the
validation code of the fit, whose values are the sequential runs'). :func:`member_record` then
puts each member's best-epoch state back into its own model, writes its fit record and
checkpoint and keeps its metrics at the steps a sequential run logs them at
(:func:`reglab.fit.record_test`).

:func:`write_records` then writes the whole stack: its MLflow runs, with the name, params, tags
(plus ``reglab.engine`` and ``reglab.stack_id``) and config a sequential run has
(:func:`reglab.pipeline.describe_run`), in one batch
(:func:`reglab.tracking.batch.write_runs`: one transaction in an SQLite store), then each
member's outcome file, then one line for the stack. A member is FINISHED for a resume
(``+resume=true``) once its run is in the store: a process killed before the commit leaves
no run of the stack, and the resume trains those members again; killed after it, the resume
finds them. :class:`RecordWriter` tests a stack's members and writes its records in a thread
while the next stack trains.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from reglab.divergence import not_finite_at_end
from reglab.errors import DivergedError, error_reason
from reglab.fit import FitRecord, record_test, tested_selection
from reglab.stacked.members import Member, StackedState
from reglab.stacked.module import StackedModule
from reglab.sweeps import outcomes
from reglab.sweeps.job import OBJECTIVE
from reglab.timing import span
from reglab.tracking.batch import FinishedRun
from reglab.tracking.run import MAX_PARAM_LENGTH

log = logging.getLogger("reglab")


@dataclasses.dataclass
class MemberRecord:
    """What a tested member leaves: its final metrics (none when it FAILED), the metric rows
    ``(key, value, step)`` of its MLflow run, its status and why it failed, and for its run
    the stack's tags and the time its fit started."""

    member: Member
    metrics: dict[str, float]
    rows: list[tuple[str, float, int]]
    tags: dict[str, str]
    started_ms: int
    status: str = "FINISHED"
    reason: str | None = None

    def run(self, commit: str | None) -> FinishedRun:
        """Its MLflow run (:func:`reglab.pipeline.describe_run`, with the git ``commit``)."""
        from reglab.pipeline import describe_run

        member = self.member
        run = describe_run(member.cfg, member.overrides, member.choices, self.tags, commit)
        run.metrics, run.status, run.start_ms = self.rows, self.status, self.started_ms
        if self.reason is not None:
            run.tags["reglab.failure_reason"] = self.reason[:MAX_PARAM_LENGTH]
        return run


def member_record(
    position: int,
    module: StackedModule,
    state: StackedState,
    stopped_early: bool,
    fit_seconds: float,
    started_ms: int,
) -> MemberRecord:
    """Member ``position``'s records, once the stack is tested (``module.tested``, none for a
    member that failed): its best-epoch state put back into its own model, its fit record and
    checkpoint written, its final metrics (nothing is written to the store yet); its run
    starts at ``started_ms`` (the stack's fit)."""
    member: Member = module.members[position]
    parts = member.components
    tags = {"reglab.engine": "stacked", "reglab.stack_id": module.settings.stack_id}
    history = member.history = dict(module.histories[position])
    epochs = module.history_epochs[position]
    rows = [(k, v, e) for k in history for v, e in zip(history[k], epochs[k], strict=True)]
    reason = failure_of(module, position)
    if reason is not None:
        log.error("job %d failed: %s", member.num, reason)
        failure = error_reason(DivergedError(reason))
        return MemberRecord(member, {}, rows, tags, started_ms, "FAILED", failure)
    parts.model.to(module.stacked[0].dtype)  # float64 under trainer.precision=64, as the fit ran
    parts.model.load_state_dict(state.member_state(module.best_states, position, parts.model))
    rule = module.best[position]  # the member's own BestWeights, applied during the fit
    selection = tested_selection(
        list(epochs.get("val/loss", [])),
        None if rule is None else rule.best_epoch,
        None if rule is None else rule.monitor,
        "min" if rule is None else rule.mode,
    )
    record = FitRecord(member.job_dir / "fit_record.json").write(
        history, module.epochs[position], stopped_early, selection
    )
    if rule is not None and rule.save and rule.best_epoch is not None:
        folder = Path(rule.dirpath or member.job_dir / "checkpoints")
        state_dict = {f"model.{name}": value for name, value in parts.model.state_dict().items()}
        rule.write(folder, state_dict, rule.best_epoch, rule.best_score)  # a RegularizedModule's keys
    test_metrics = module.tested[position]
    metrics = record_test(parts.model, parts.datamodule, [test_metrics], record, fit_seconds, None)
    # logged as a sequential run logs them: the test's at the last epoch, the fit's summary at 0
    rows += [(k, v, module.epochs[position]) for k, v in test_metrics.items()]
    rows += [(k, v, 0) for k, v in metrics.items() if k not in test_metrics]
    return MemberRecord(member, metrics, rows, tags, started_ms)


def failure_of(module: StackedModule, position: int) -> str | None:
    """Why member ``position`` failed (its divergence, or a non-finite value at the end), or
    ``None``: a member that did not fail is tested."""
    last = module.last_values[position]
    return module.failure[position] or not_finite_at_end(last, module.epochs[position])


def write_records(stack_id: str, records: list[MemberRecord]) -> None:
    """Write the stack's MLflow runs (one batch per store and experiment: their params, tags and
    config described here), then each member's outcome file, then one line: how many FINISHED
    and FAILED, and where they went."""
    from reglab import tracking
    from reglab.tracking.batch import write_runs

    by_logger: dict[tuple, list[MemberRecord]] = {}  # members of a stack share their logger
    for record in records:
        cfg = record.member.cfg
        if cfg.logger.enabled:
            by_logger.setdefault((repr(cfg.logger), str(cfg.paths.output_dir)), []).append(record)
    batches: dict[tuple[str, str], list[MemberRecord]] = {}
    for group in by_logger.values():
        batches.setdefault(tracking.experiment_of(group[0].member.cfg), []).extend(group)
    commit = tracking.git_commit(records[0].member.cfg.paths.root_dir) if batches else None  # one project
    for (uri, experiment_id), tracked in batches.items():
        runs = [record.run(commit) for record in tracked]
        write_runs(uri, experiment_id, runs)
        for record, run in zip(tracked, runs, strict=True):
            record.member.run_id = run.run_id
    for record in records:
        member = record.member
        outcomes.write_outcome(
            member.job_dir,
            job=member.num,
            status=record.status,
            overrides=member.overrides,
            objective=record.metrics.get(OBJECTIVE, math.nan),
            run_id=member.run_id,
            reason=record.reason,
        )
    failed = sum(r.status == "FAILED" for r in records)
    where = f"job folders under {records[0].member.job_dir.parent}" if records else "no job folder"
    stores = "; ".join(f"MLflow runs in {uri} (experiment {experiment})" for uri, experiment in batches)
    log.info(
        "stack %s recorded: %d finished, %d failed; %s%s",
        stack_id,
        len(records) - failed,
        failed,
        where,
        f"; {stores}" if stores else "",
    )


class RecordWriter:
    """Tests each trained stack's members and writes its records (the ``work`` of
    :func:`reglab.stacked.fit.record_stack`) in a thread of its own, so that they are done
    while the next stack trains. One stack at a time: :meth:`submit` waits for the previous
    stack's first, and :meth:`wait` (at the end of a sweep, and when it is interrupted or
    fails) lets the records of every trained stack reach the store; the thread is not a
    daemon, so an interrupted process still ends them before it exits.

    Lightning's Trainer tests from this thread as from the main one (its signal handlers are
    installed from the main thread only); the trained stack's tensors stay in memory until its
    records are written."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, members: int, work: Callable[[], list[dict[str, float]]]) -> list[dict[str, float]]:
        """Start ``work`` (returning the final metrics of ``members`` members) once the
        previous stack's is done; returns the members' metrics, filled in when it ends."""
        with span("records"):  # the previous stack's records, if still being done
            self.wait()
        metrics: list[dict[str, float]] = [{} for _ in range(members)]
        thread = threading.Thread(target=self._run, args=(work, metrics), name="stack-records")
        with _signals_held():  # an interrupt comes once the thread runs: wait() then joins it
            thread.start()
            self._thread = thread
        return metrics

    def _run(self, work: Callable[[], list[dict[str, float]]], metrics: list[dict[str, float]]) -> None:
        try:
            for mine, done in zip(metrics, work(), strict=True):
                mine.update(done)
        except BaseException as error:  # raised in the sweep's thread by wait()
            self._error = error

    def wait(self) -> None:
        """Until the work submitted is done; its error, if any, is raised here."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


@contextlib.contextmanager
def _signals_held():
    """Signals to this thread are held (pending) inside, and delivered on leaving: a Ctrl-C's
    :class:`~reglab.errors.Interrupted` cannot leave a thread half started. The thread started
    inside inherits the mask: signals are the main thread's to handle."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
