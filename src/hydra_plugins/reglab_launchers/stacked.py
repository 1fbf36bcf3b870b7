"""``hydra/launcher=stacked``: the compatible jobs of a sweep trained as stacks
(:mod:`reglab.stacked`); the others run one by one, as with Hydra's basic launcher."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn, setup_globals

from reglab import checks
from reglab.sweeps.checked import CheckingLauncher
from reglab.timing import span


class StackedLauncher(CheckingLauncher):
    """Hydra launcher of stacked sweeps, which checks every job first
    (:mod:`reglab.sweeps.checked`); ``max_members`` caps the members of one stack;
    ``executor`` (``local`` / ``slurm``) submits each stack as one submitit job with the
    ``submitit`` parameters (:mod:`reglab.stacked.submit`) instead of training it here."""

    def __init__(
        self, max_members: int = 128, executor: str | None = None, submitit: dict | None = None
    ) -> None:
        from reglab.stacked.submit import EXECUTORS

        self.max_members = checks.integer("hydra.launcher.max_members", max_members, low=1)
        self.executor = (
            None if executor is None else checks.choice("hydra.launcher.executor", executor, EXECUTORS)
        )
        self.submitit = dict(submitit or {})

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra.core.utils import configure_log

        from reglab.stacked.launch import StackedSweep

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep = StackedSweep(
            self.hydra_context,
            self.task_function,
            self.config,
            self.max_members,
            self.executor,
            self.submitit,
        )
        sweep.sweep_dir.mkdir(parents=True, exist_ok=True)
        with span("sweep plan"):
            checked = self.checked_jobs(job_overrides, initial_job_idx)
        return sweep.run(checked)
