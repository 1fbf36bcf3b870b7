"""Command line: ``python train.py [overrides]`` / ``reglab-train [overrides]``.

Hydra composes the config from ``conf/``; the job itself is :func:`reglab.pipeline.train`
(one run, its config through its door here: :func:`reglab.config.check_job`, ending with its
:func:`~reglab.pipeline.headline` on the console) or :func:`reglab.sweeps.job.run_sweep_job`
(a job of a ``-m`` sweep, checked by reglab's launchers before the first job trains). A study's
preset (``experiment=bias_variance``, ``experiment=article``) runs its script instead
(:mod:`reglab.studies`). A config error ends the process with exit status 2 and one line on
stderr.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig

from reglab.config import (
    CONFIG_NAME,
    check_job,
    composing,
    find_config_dir,
    group_choices,
    prepare_environment,
)
from reglab.entry import command, exit_on_user_error, import_run_modules
from reglab.errors import USER_ERRORS, DivergedError
from reglab.overrides import check_overrides
from reglab.studies.presets import chosen_study, refusal, refuse_in_sweep, run_study
from reglab.timing import span
from reglab.tracking.redaction import redact_hydra_copies

log = logging.getLogger("reglab")


def _job(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    choices = group_choices(hydra_cfg.runtime.choices)
    job_dir = Path(hydra_cfg.runtime.output_dir)
    redact_hydra_copies(job_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from reglab.sweeps.checked import checked_by_launcher
        from reglab.sweeps.job import run_sweep_job

        job, checked = int(hydra_cfg.job.num), checked_by_launcher(hydra_cfg)
        return run_sweep_job(cfg, job, job_dir, Path(hydra_cfg.sweep.dir), overrides, choices, checked)
    with exit_on_user_error():  # inside the job: Hydra would turn it into a traceback
        try:
            refuse_in_sweep(cfg)  # a study's settings reach a single run only from a preset of one's own
            check_job(cfg)  # the door, before torch is imported
            from reglab.pipeline import prepare

            components = prepare(cfg)  # every constructor, before the training stack loads
        except USER_ERRORS:
            _remove_job_folder(job_dir, Path(cfg.paths.output_dir))
            raise
    from reglab.pipeline import headline, train
    from reglab.sweeps.job import OBJECTIVE

    import_run_modules(with_mlflow=bool(cfg.logger.enabled))
    try:
        result = train(cfg, overrides, job_dir, choices, components=components)
    except DivergedError as error:  # recorded as FAILED with its reason; one line here
        print(f"reglab: run failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info(headline(result))
    return result.metrics.get(OBJECTIVE)


def _remove_job_folder(job_dir: Path, output_dir: Path) -> None:
    """A start that failed on its config leaves nothing: Hydra's job folder (its config
    copies and log) goes, and the date folders above it when they are left empty."""
    shutil.rmtree(job_dir, ignore_errors=True)
    for folder in job_dir.parents:
        if folder == output_dir or output_dir not in folder.parents or any(folder.iterdir()):
            break
        folder.rmdir()


def main() -> None:
    """Entry point: Hydra's main around :func:`_job`, inside :func:`reglab.entry.command`."""
    with command():
        import hydra

        config_dir = find_config_dir()
        prepare_environment(config_dir)
        if (study := chosen_study(sys.argv[1:])) is not None:
            if {"-m", "--multirun"} & set(sys.argv[1:]):
                raise refusal(study)
            run_study(study, sys.argv[1:], config_dir.parent)
            return
        with composing():
            check_overrides(sys.argv[1:], config_dir, CONFIG_NAME)
            with span("hydra"):
                hydra.main(config_path=str(config_dir), config_name=CONFIG_NAME, version_base="1.3")(_job)()
