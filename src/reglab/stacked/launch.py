"""The sweep side of ``hydra/launcher=stacked``: compose every job, check them all, train the
stackable ones in stacks and run the others one by one.

1. Every job's config is composed and checked by the launcher
   (:mod:`reglab.sweeps.checked`); a bad value fails the whole sweep (one line, exit status
   2, the parent run FAILED) before anything trains.
2. Each stackable job gets its job folder (where a basic job's would be, without Hydra's
   per-job set-up) and is prepared: its data split and initialized model are built (a bad
   value fails the sweep here too) or, with ``+resume=true``, it is skipped when its config
   already FINISHED.
3. Jobs are grouped by :func:`reglab.stacked.plan.stack_key`, cut into stacks of at most
   ``max_members``, and each stack is trained (:func:`reglab.stacked.fit.train_stack`); its
   members are tested and its records written while the next stack trains
   (:class:`~reglab.stacked.records.RecordWriter`).
4. The jobs that cannot stack run on the ordinary path, each with one log line saying why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job
from omegaconf import DictConfig, open_dict

from reglab.errors import USER_ERRORS, error_reason
from reglab.stacked import plan
from reglab.stacked.members import Member
from reglab.sweeps import outcomes
from reglab.sweeps.checked import CheckedJob, stop_sweep
from reglab.timing import span

log = logging.getLogger("reglab")


def member_config(sweep_config: DictConfig) -> DictConfig:
    """The job's config as its task function sees it (Hydra's ``run_job`` hands it a copy
    without the ``hydra`` node): the launcher's config of the job, composed for this job
    alone, with that node taken out (not copied)."""
    with open_dict(sweep_config):
        sweep_config.pop("hydra")
    return sweep_config


class StackedSweep:
    """One ``launch`` call of the stacked launcher (see the module docstring)."""

    def __init__(
        self,
        hydra_context,
        task_function: Callable,
        config: DictConfig,
        max_members: int,
        executor: str | None = None,
        submitit: dict | None = None,
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        self.max_members, self.executor, self.submitit = max_members, executor, dict(submitit or {})
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def run(self, checked: Sequence[CheckedJob]) -> list[JobReturn]:
        """Run the launcher's checked jobs (step 1)."""
        stackable, returns = [], {}
        with span("sweep prepare"):
            for job in checked:
                job.reason = plan.why_not_stackable(job.values)
                if job.reason is None:
                    stackable.append((job, plan.stack_key(job.values)))
            members = self._prepare(stackable, returns)
        self._train_stacks(members, returns)
        for job in checked:
            if job.number not in returns:
                log.info("job %d runs on its own (not stacked): %s", job.number, job.reason)
                returns[job.number] = self._run_job(job.config, self.task_function, job.overrides)
        return [returns[job.number] for job in checked]

    def _run_job(self, sweep_config: DictConfig, task_function: Callable, overrides: list[str]) -> JobReturn:
        from hydra.core.utils import configure_log

        log.info("\t#%d : %s", sweep_config.hydra.job.num, " ".join(filter_overrides(overrides)))
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret

    def _prepare(
        self, stackable: list[tuple[CheckedJob, str]], returns: dict[int, JobReturn]
    ) -> list[tuple[Member, str]]:
        """Each stackable job's folder and :class:`Member` (or its SKIPPED outcome, on resume).

        Without Hydra's per-job set-up (``run_job``): no copy of the whole config with its
        ``hydra`` node, no ``.hydra/`` copies of the config (each member's resolved config is
        its MLflow run's ``config.yaml``, its overrides are in its ``outcome.json``), no logging
        set-up and no ``#N`` line per job (the stack's line names its jobs)."""
        from reglab.config import group_choices
        from reglab.sweeps.manifest import SweepManifest

        manifest = SweepManifest.read(self.sweep_dir)
        prepared: list[tuple[Member, str]] = []
        for job, key in stackable:
            idx, hydra = job.number, job.config.hydra
            job_dir = (self.sweep_dir / str(hydra.sweep.subdir)).resolve()  # sweep.dir: the sweep's
            task_overrides = list(hydra.overrides.task)  # as the basic launcher's job records them
            choices = group_choices(hydra.runtime.choices)
            ret = JobReturn(
                overrides=task_overrides,
                hydra_cfg=hydra,
                working_dir=str(job_dir),
                task_name=str(hydra.job.name),
                status=JobStatus.COMPLETED,
            )
            try:
                member = self._prepare_member(job, job_dir, manifest, task_overrides, choices)
            except Exception as error:
                if isinstance(error, USER_ERRORS):
                    stop_sweep(self.config, error)
                log.error("job %d failed: %s: %s", idx, type(error).__name__, error)
                reason = error_reason(error)
                outcomes.write_outcome(
                    job_dir, job=idx, status="FAILED", overrides=job.overrides, reason=reason
                )
                ret.return_value, returns[idx] = math.nan, ret
                continue
            if isinstance(member, Member):
                ret.cfg, member.job_return = member.cfg, ret
                prepared.append((member, key))
            else:  # skipped on resume: its objective
                ret.return_value, returns[idx] = member, ret
        return prepared

    def _prepare_member(
        self, job: CheckedJob, job_dir: Path, manifest, task_overrides: list[str], choices: dict[str, str]
    ) -> Member | float:
        """The job's :class:`Member` (its data split and initialized model built from its
        :func:`member_config`, with the callbacks its checks built), or with ``+resume=true``
        the objective of its FINISHED run."""
        from reglab.pipeline import prepare
        from reglab.sweeps.job import skip_if_finished, with_sweep_identity

        job_dir.mkdir(parents=True, exist_ok=True)
        cfg = with_sweep_identity(member_config(job.config), manifest)
        skipped = skip_if_finished(cfg, job.number, job_dir, job.overrides)
        if skipped is not None:
            return skipped
        components = prepare(cfg, job.callbacks)
        return Member(job.number, cfg, task_overrides, choices, job_dir, components)

    def _train_stacks(self, prepared: list[tuple[Member, str]], returns: dict[int, JobReturn]) -> None:
        from reglab.entry import import_run_modules
        from reglab.stacked.fit import train_stack
        from reglab.stacked.records import RecordWriter
        from reglab.sweeps.job import OBJECTIVE
        from reglab.sweeps.manifest import SweepManifest

        if not prepared:
            return
        import_run_modules(with_mlflow=any(bool(m.cfg.logger.enabled) for m, _ in prepared))
        manifest = SweepManifest.read(self.sweep_dir)
        prefix = manifest.sweep_id if manifest is not None else "stack"
        groups = plan.stacks([key for _, key in prepared], self.max_members)
        log.info("%d jobs in %d stack(s) of at most %d members", len(prepared), len(groups), self.max_members)
        stacks = [
            (f"{prefix}-{n}", [prepared[p][0] for p in positions]) for n, positions in enumerate(groups, 1)
        ]
        if self.executor is None:
            writer = RecordWriter()  # a stack is tested and recorded while the next one trains
            try:
                results = [
                    self._guarded(
                        lambda members=members, stack_id=stack_id: train_stack(
                            members, stack_id, self.max_members, writer
                        )
                    )
                    for stack_id, members in stacks
                ]
            finally:
                with span("records"):  # the last stack's tests and records, after all training
                    writer.wait()
        else:
            from reglab.stacked.submit import submit_stacks

            folder = self.sweep_dir / ".submitit"
            results = submit_stacks(stacks, self.executor, self.submitit, folder, self.max_members)
        for (_, members), metrics_of in zip(stacks, results, strict=True):
            for member, metrics in zip(members, metrics_of, strict=True):
                ret = member.job_return
                ret.status, ret.return_value = JobStatus.COMPLETED, metrics.get(OBJECTIVE, math.nan)
                returns[member.num] = ret

    def _guarded(self, call: Callable):
        """``call()``; a user error (a bad value) ends the sweep (:func:`stop_sweep`)."""
        try:
            return call()
        except USER_ERRORS as error:
            stop_sweep(self.config, error)
