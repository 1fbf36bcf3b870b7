"""Command line: ``python train.py [overrides]`` / ``reglab-train [overrides]``.

Hydra composes the config from ``conf/``; the job itself is :func:`reglab.pipeline.train`.
A config error ends the process with exit status 2 and one line on stderr.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from reglab.config import (
    CONFIG_NAME,
    ConfigError,
    MissingDataError,
    find_config_dir,
    group_choices,
    prepare_environment,
)
from reglab.startup import import_run_modules

CONFIG_ERROR_STATUS = 2
OBJECTIVE = "fit/best_val_loss"  # what a job returns to Hydra's sweeper

log = logging.getLogger("reglab")


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a :class:`ConfigError` (bad value, bad data file) or a missing data set into one
    line on stderr and exit status 2."""
    try:
        yield
    except (ConfigError, MissingDataError) as error:
        print(f"reglab: error: {error}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_STATUS) from None


def _job(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    import_run_modules(with_mlflow=bool(cfg.logger.enabled))  # after validation (on_run_start)
    from reglab.pipeline import train

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, hydra_cfg)
    with exit_on_config_error():
        result = train(
            cfg,
            list(hydra_cfg.overrides.task),
            Path(hydra_cfg.runtime.output_dir),
            group_choices(hydra_cfg.runtime.choices),
        )
    return result.metrics.get(OBJECTIVE)


def _sweep_job(cfg: DictConfig, hydra_cfg: DictConfig) -> float:
    """One job of a sweep: a failure is recorded (MLflow run FAILED, outcome file) and the
    sweep goes on; with ``+resume=true`` a config already FINISHED in the experiment is
    skipped. Returns the objective (``fit/best_val_loss``; NaN when the job failed)."""
    import math

    from reglab import sweep
    from reglab.pipeline import config_hash, train

    job, job_dir = int(hydra_cfg.job.num), Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    outcome = {"job": job, "overrides": " ".join(overrides), "run_id": None, "reason": None}
    log.info(sweep.progress_line(job))
    if os.environ.get(sweep.ENV_THREADS):
        import torch

        torch.set_num_threads(int(os.environ[sweep.ENV_THREADS]))
    previous = _finished_before(cfg, config_hash(cfg)) if cfg.get("resume") else None
    if previous is not None:
        objective = previous.data.metrics.get(OBJECTIVE, math.nan)
        log.info("resume: skipping job %d, already FINISHED as run %s", job, previous.info.run_id)
        sweep.write_outcome(job_dir, **outcome | {
            "status": "SKIPPED", "objective": objective, "run_id": previous.info.run_id})
        return objective
    try:
        if cfg.trainer.get("strategy") == "ddp":
            raise ConfigError(
                "trainer.strategy='ddp' is not allowed in a -m sweep: it relaunches the script, so every "
                "rank would re-run the whole sweep; use trainer=ddp_spawn, or launch one ddp job per run"
            )
        result = train(cfg, overrides, job_dir, group_choices(hydra_cfg.runtime.choices))
    except Exception as error:  # recorded, and the sweep continues
        if isinstance(error, (ConfigError, MissingDataError)):
            print(f"reglab: error: {error}", file=sys.stderr)
        else:
            log.exception("job %d failed", job)
        sweep.write_outcome(job_dir, **outcome | {
            "status": "FAILED", "objective": math.nan, "reason": f"{type(error).__name__}: {error}"})
        return math.nan
    objective = result.metrics.get(OBJECTIVE, math.nan)
    sweep.write_outcome(job_dir, **outcome | {
        "status": "FINISHED", "objective": objective, "run_id": result.run_id})
    return objective


def _finished_before(cfg: DictConfig, config_hash: str):
    if not cfg.logger.enabled:
        return None
    from reglab import sweep, tracking

    uri = tracking.resolve_tracking_uri(cfg.logger.tracking_uri, cfg.paths.output_dir)
    experiment_id = cfg.logger.get("experiment_id") or tracking.ensure_experiment(
        uri, cfg.logger.experiment_name, cfg.logger.artifact_location
    )
    return sweep.finished_run_with_hash(uri, experiment_id, config_hash)


def main() -> None:
    """Entry point. The garbage collector stays off until the first job has imported its
    modules (:func:`reglab.startup.import_run_modules`; Hydra, OmegaConf and a sweep's
    MLflow parent run come before that), and everything alive is frozen before the
    interpreter exits, whose final collections would otherwise walk all of it again."""
    gc.disable()
    try:
        import hydra

        config_dir = find_config_dir()
        prepare_environment(config_dir)
        hydra.main(config_path=str(config_dir), config_name=CONFIG_NAME, version_base="1.3")(_job)()
    finally:
        gc.freeze()
        gc.enable()
