"""One job of a ``-m`` sweep: a failure is recorded (MLflow run FAILED, outcome file) and
the sweep goes on; with ``+resume=true`` a config already FINISHED in the experiment is
skipped."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

from reglab.config import check_job
from reglab.errors import USER_ERRORS, ConfigError, Interrupted, error_reason
from reglab.studies.presets import refuse_in_sweep
from reglab.sweeps import outcomes
from reglab.sweeps.manifest import SweepManifest
from reglab.timing import timed
from reglab.tracking.redaction import redact_hydra_copies

OBJECTIVE = "fit/best_val_loss"  # what a job returns to Hydra's sweeper

log = logging.getLogger("reglab")


def progress_line(job: int, manifest: SweepManifest | None) -> str:
    """``job 4/12 of sweep <id>: 3 done (1 failed), 00:00:41 elapsed, ~00:02:00 left``: the
    estimate is the mean time of the jobs done so far times the jobs still to run."""
    if manifest is None:
        return f"job {job + 1} of a sweep"
    done = outcomes.read_outcomes(Path(manifest.sweep_dir))
    failed = sum(o["status"] == "FAILED" for o in done)
    elapsed = time.time() - manifest.started
    left = f"~{_clock(elapsed / len(done) * (manifest.size - len(done)))} left" if done else "estimating"
    return (
        f"job {job + 1}/{manifest.size} of sweep {manifest.sweep_id}: {len(done)} done ({failed} failed), "
        f"{_clock(elapsed)} elapsed, {left}"
    )


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds)))


def with_sweep_identity(cfg: DictConfig, manifest: SweepManifest | None) -> DictConfig:
    """The job's config with the sweep's parent run, experiment and identity filled in
    (``logger.parent_run_id``, ...), unless the user set them."""
    if manifest is None:
        return cfg
    with open_dict(cfg):
        for key in ("parent_run_id", "experiment_id", "sweep_id"):
            if cfg.logger.get(key) is None:
                cfg.logger[key] = getattr(manifest, key)
        if cfg.logger.get("sweep_signature") is None:
            cfg.logger.sweep_signature = manifest.signature
    return cfg


@timed("sweep job")
def run_sweep_job(
    cfg: DictConfig,
    job: int,
    job_dir: Path,
    sweep_dir: Path,
    overrides: Sequence[str],
    choices: dict,
    checked: bool = False,
) -> float:
    """Train job ``job`` of the sweep in ``sweep_dir``; returns the objective
    (``fit/best_val_loss``; NaN when the job failed). Unless ``checked`` (its launcher has put
    it through its door: :func:`reglab.sweeps.checked.checked_by_launcher`), ``cfg`` passes
    its door here (:func:`reglab.config.check_job`), a bad value failing this job alone."""
    redact_hydra_copies(sweep_dir)  # multirun.yaml, written by Hydra's sweeper
    redact_hydra_copies(job_dir)
    manifest = SweepManifest.read(sweep_dir)
    cfg = with_sweep_identity(cfg, manifest)
    outcome = {"job": job, "overrides": overrides}
    log.info(progress_line(job, manifest))
    if manifest is not None and manifest.threads_per_job:
        import torch

        torch.set_num_threads(manifest.threads_per_job)
    try:
        if not checked:
            refuse_in_sweep(cfg)
            check_job(cfg)
        skipped = skip_if_finished(cfg, job, job_dir, overrides)
        if skipped is not None:
            return skipped
        result = _train(cfg, job_dir, overrides, choices)
    except Interrupted as interrupted:  # recorded, and the sweep stops (reglab.entry)
        outcomes.write_outcome(job_dir, **outcome, status="KILLED", reason=str(interrupted))
        raise
    except Exception as error:  # recorded, and the sweep continues
        if isinstance(error, USER_ERRORS):
            print(f"reglab: error: {error}", file=sys.stderr)
        else:
            log.exception("job %d failed", job)
        outcomes.write_outcome(job_dir, **outcome, status="FAILED", reason=error_reason(error))
        return math.nan
    objective = result.metrics.get(OBJECTIVE, math.nan)
    outcomes.write_outcome(job_dir, **outcome, status="FINISHED", objective=objective, run_id=result.run_id)
    return objective


def _train(cfg: DictConfig, job_dir: Path, overrides: Sequence[str], choices: dict):
    from reglab.entry import import_run_modules
    from reglab.pipeline import prepare, train

    if cfg.trainer.get("strategy") == "ddp":
        raise ConfigError(
            "trainer.strategy='ddp' is not allowed in a -m sweep: it relaunches the script, so every "
            "rank would re-run the whole sweep; use trainer=ddp_spawn, or launch one ddp job per run"
        )
    components = prepare(cfg)
    import_run_modules(with_mlflow=bool(cfg.logger.enabled))
    return train(cfg, overrides, job_dir, choices, components=components)


def skip_if_finished(cfg: DictConfig, job: int, job_dir: Path, overrides: Sequence[str]) -> float | None:
    """With ``+resume=true``, when the job's config already FINISHED: record it SKIPPED (its
    outcome file, a log line and, in a tracked sweep, the reused run on the parent run:
    :func:`reglab.sweeps.resume.record_skip`) and return that run's objective; else ``None``."""
    previous = finished_before(cfg)
    if previous is None:
        return None
    objective = previous.data.metrics.get(OBJECTIVE, math.nan)
    log.info("resume: skipping job %d, already FINISHED as run %s", job, previous.info.run_id)
    if cfg.logger.get("parent_run_id"):
        from reglab import tracking
        from reglab.sweeps.resume import record_skip

        record_skip(tracking.experiment_of(cfg)[0], cfg.logger.parent_run_id, job, previous.info.run_id)
    outcomes.write_outcome(
        job_dir,
        job=job,
        overrides=overrides,
        status="SKIPPED",
        objective=objective,
        run_id=previous.info.run_id,
    )
    return objective


def finished_before(cfg: DictConfig):
    """With ``+resume=true``: a FINISHED run of the experiment with the config hash of ``cfg``,
    a checked config (:func:`reglab.config.check_job`: as it will be trained and recorded)."""
    if not cfg.get("resume") or not cfg.logger.enabled:
        return None
    from reglab import tracking
    from reglab.pipeline import config_hash
    from reglab.sweeps.resume import finished_run_with_hash

    return finished_run_with_hash(*tracking.experiment_of(cfg), config_hash(cfg))
