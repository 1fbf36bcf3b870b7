"""``hydra/launcher=slurm`` and ``hydra/launcher=local``: Hydra's submitit launchers with
reglab's additions (:mod:`reglab.sweeps.launchers`)."""

from __future__ import annotations

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from reglab.sweeps.launchers import ReglabSubmitit


class SlurmLauncher(ReglabSubmitit, submitit_launcher.SlurmLauncher):
    """One SLURM array task per job; failed runs fail their task; resume filters first."""


class LocalLauncher(ReglabSubmitit, submitit_launcher.LocalLauncher):
    """submitit's local executor, the same code path as SLURM."""
