"""Hydra callbacks: they run in the launching process, around all jobs.

For a single run the store and experiment are created (and the config validated)
before the job. For a ``-m`` sweep, before any job starts, :class:`SweepTracking`
creates the store, the experiment and a *parent* MLflow run, and hands their ids to the
jobs through environment variables (inherited by joblib / submitit workers too), so
that every job is a child run in the right experiment without looking it up by name.
When the sweep ends it writes the sweep's summary to the parent run, sets the parent's
status from its children and exits non-zero if any job failed.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from reglab import sweep

log = logging.getLogger("reglab")


def _tracking_uri(config: DictConfig) -> str:
    from reglab import tracking

    return tracking.resolve_tracking_uri(config.logger.tracking_uri, config.paths.output_dir)


def _ensure_experiment(config: DictConfig) -> str:
    from reglab import tracking

    return tracking.ensure_experiment(
        _tracking_uri(config), config.logger.experiment_name, config.logger.artifact_location
    )


class SweepTracking(Callback):
    """Store, experiment and parent run for sweeps; validation and store for single runs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from reglab.cli import exit_on_config_error
        from reglab.config import validate

        with exit_on_config_error():
            validate(config)
        if config.logger.enabled:
            _ensure_experiment(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self.parent = None
        overrides = list(config.hydra.overrides.task)
        params = config.hydra.sweeper.get("params")
        sweep_params = OmegaConf.to_container(params) if params is not None else {}
        self.size = sweep.count_jobs(overrides, sweep_params)
        signature = sweep.signature(overrides, sweep_params)
        sweep_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        os.environ.update({
            sweep.ENV_SWEEP_ID: sweep_id,
            sweep.ENV_SWEEP_SIZE: str(self.size),
            sweep.ENV_SWEEP_STARTED: str(self.started),
            sweep.ENV_SWEEP_DIR: str(self.sweep_dir),
            sweep.ENV_SIGNATURE: signature,
        })
        threads = sweep.threads_per_job(config.hydra.launcher)
        if threads:
            os.environ[sweep.ENV_THREADS] = str(threads)
        log.info("sweep %s: %d jobs -> %s", sweep_id, self.size, self.sweep_dir)
        if not config.logger.enabled:
            return
        from reglab import tracking

        uri = _tracking_uri(config)
        experiment_id = _ensure_experiment(config)
        if config.get("resume"):
            killed = sweep.kill_abandoned_runs(uri, experiment_id, signature)
            if killed:
                log.info("resume: marked %d runs left RUNNING by an earlier sweep as KILLED", killed)
        self.parent = tracking.TrackedRun(uri, experiment_id)
        self.parent.start(f"sweep-{sweep_id}", {
            "reglab.kind": "sweep",
            "reglab.sweep_id": sweep_id,
            "reglab.sweep_signature": signature,
            "reglab.overrides": " ".join(overrides) or "(none)",
            "reglab.sweep_dir": str(self.sweep_dir),
        })
        self.parent.log_params({"sweep.jobs": str(self.size), "sweep.overrides": " ".join(overrides)})
        self.parent.log_text(
            OmegaConf.to_yaml({"overrides": overrides, "sweeper_params": sweep_params}),
            "sweep.yaml",
        )
        os.environ[sweep.ENV_PARENT_RUN_ID] = self.parent.run_id
        os.environ[sweep.ENV_EXPERIMENT_ID] = experiment_id

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        outcomes = sweep.read_outcomes(self.sweep_dir)
        failed = [o for o in outcomes if o["status"] == "FAILED"]
        elapsed = time.time() - self.started
        table = sweep.outcome_table(outcomes)
        if self.parent is not None:
            self.parent.log_text(table.to_csv(index=False), "summary/jobs.csv")
            self.parent.log_text(sweep.markdown(table), "summary/jobs.md")
            self.parent.log_metrics({
                "sweep/jobs": len(outcomes),
                "sweep/failed": len(failed),
                "sweep/skipped": sum(o["status"] == "SKIPPED" for o in outcomes),
                "sweep/seconds": elapsed,
            })
            self._attach_report()
            status = "FAILED" if failed or len(outcomes) < self.size else "FINISHED"
            self.parent.client.set_terminated(self.parent.run_id, status)
        log.info(
            "sweep done in %.0fs: %d jobs, %d finished, %d skipped, %d failed",
            elapsed, len(outcomes), sum(o["status"] == "FINISHED" for o in outcomes),
            sum(o["status"] == "SKIPPED" for o in outcomes), len(failed),
        )
        for outcome in failed:
            log.error("failed job %s (%s): %s", outcome["job"], outcome["overrides"], outcome["reason"])
        if failed:
            raise SystemExit(1)

    def _attach_report(self) -> None:
        """Tables and figures of the sweep (reglab.report) as parent-run artifacts."""
        try:
            from reglab import report
        except ImportError:
            return
        try:
            report.write_report(self.parent.uri, sweep_id=os.environ[sweep.ENV_SWEEP_ID])
        except Exception as error:  # a report problem must not hide the sweep's outcome
            log.warning("sweep report not written: %s", error)
