"""Every job of a sweep through its door before the first one trains.

reglab's in-process launchers (``hydra/launcher=basic``, the default, and ``stacked``) are
:class:`CheckingLauncher` s: before any job runs they compose every job's config (once per set
of config-group choices: :class:`reglab.compose_once.ComposeOnce`), put it through its door
(:func:`reglab.config.check_job`) and build its callbacks (:func:`reglab.build.build_callbacks`:
their constructors' checks). A bad value in any job ends the sweep (:func:`stop_sweep`): one
line naming the key, the value and what is allowed, exit status 2, the parent run FAILED and
nothing trained. Each job then runs on its checked config (Hydra's ``run_job`` hands the job
its copy without the ``hydra`` node) and is not checked again (:func:`checked_by_launcher`);
the jobs of other launchers (joblib, submitit) pass their door themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, open_dict


@dataclasses.dataclass
class CheckedJob:
    """One job of a sweep through its door: its number, overrides, config (with the ``hydra``
    node) and the callbacks its checks built (a stacked member trains with these)."""

    number: int
    overrides: list[str]
    config: DictConfig
    callbacks: list
    values: dict  # its config's values as checked (reglab.config.checked_values)
    reason: str | None = None  # why the stacked engine does not stack it, if it does not


class CheckingLauncher(Launcher):
    """What reglab's in-process launchers share (see the module docstring): the set-up with
    :class:`~reglab.compose_once.ComposeOnce` and :meth:`checked_jobs`."""

    config: DictConfig | None = None
    task_function = None
    hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        """Also makes the sweep's config loader compose once per set of group choices, for the
        sweeper's checks and ours."""
        from reglab.compose_once import ComposeOnce

        if not isinstance(hydra_context.config_loader, ComposeOnce):
            hydra_context.config_loader = ComposeOnce(hydra_context.config_loader)
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def checked_jobs(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[CheckedJob]:
        """Every job: its config composed as Hydra's basic launcher composes it, through its
        door, its callbacks built; an error in any job ends the sweep (:func:`stop_sweep`)."""
        from reglab.build import build_callbacks
        from reglab.config import checked_values
        from reglab.studies.presets import refuse_in_sweep

        loader, jobs = self.hydra_context.config_loader, []
        try:
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                sweep_config = loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                refuse_in_sweep(sweep_config)
                values = checked_values(sweep_config)
                jobs.append(
                    CheckedJob(idx, list(overrides), sweep_config, build_callbacks(sweep_config), values)
                )
        except Exception as error:
            stop_sweep(self.config, error)
        return jobs


def checked_by_launcher(hydra_cfg: DictConfig) -> bool:
    """Whether the launcher of a job's sweep (``hydra.launcher``, from the job's Hydra config)
    put every job through its door before the first one trained."""
    from hydra.utils import get_class

    return issubclass(get_class(hydra_cfg.launcher._target_), CheckingLauncher)


def stop_sweep(config: DictConfig, error: BaseException) -> NoReturn:
    """End the sweep of ``config`` (its config, with the ``hydra`` node) on ``error``: the
    parent run FAILED with it; a user error (a bad value) then ends the command as one line and
    exit status 2 (:func:`reglab.entry.exit_on_user_error`), any other error is raised again."""
    from reglab.entry import exit_on_user_error
    from reglab.sweeps.manifest import SweepManifest

    manifest = SweepManifest.read(Path(str(config.hydra.sweep.dir)))
    if manifest is not None and manifest.parent_run_id is not None:
        from reglab import tracking

        parent = tracking.TrackedRun(tracking.experiment_of(config)[0], manifest.experiment_id)
        parent.run_id = manifest.parent_run_id
        parent.fail(error)
    with exit_on_user_error():
        raise error
