"""``hydra/launcher=stacked``: the compatible jobs of a sweep trained as stacks
(:mod:`reglab.stacked`); the others run one by one, as with Hydra's basic launcher."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn, setup_globals
from hydra.plugins.launcher import Launcher

from reglab import checks


class StackedLauncher(Launcher):
    """Hydra launcher of stacked sweeps; ``max_members`` caps the members of one stack;
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
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        """Also makes the sweep's config loader compose once per set of group choices
        (:class:`reglab.sweeps.compose.ComposeOnce`), for the sweeper's checks and ours."""
        from reglab.sweeps.compose import ComposeOnce

        if not isinstance(hydra_context.config_loader, ComposeOnce):
            hydra_context.config_loader = ComposeOnce(hydra_context.config_loader)
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

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
        return sweep.run(job_overrides, initial_job_idx)
