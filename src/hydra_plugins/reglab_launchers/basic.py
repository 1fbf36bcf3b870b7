"""``hydra/launcher=basic`` (the default; conf/hydra/launcher/basic.yaml): Hydra's basic
launcher after reglab's check of every job (:mod:`reglab.sweeps.checked`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals

from reglab.sweeps.checked import CheckingLauncher

log = logging.getLogger(__name__)


class BasicLauncher(CheckingLauncher):
    """Checks every job of the sweep (a bad value ends it before anything trains), then runs
    the jobs one after another in this process, as Hydra's ``BasicLauncher`` does."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        jobs = self.checked_jobs(job_overrides, initial_job_idx)
        log.info("Launching %d jobs locally", len(jobs))
        returns = []
        for job in jobs:
            log.info("\t#%d : %s", job.number, " ".join(filter_overrides(job.overrides)))
            returns.append(
                run_job(
                    hydra_context=self.hydra_context,
                    task_function=self.task_function,
                    config=job.config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            )
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns
