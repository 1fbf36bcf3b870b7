"""Hydra callbacks: they run in the launching process, around all jobs.

For a ``-m`` sweep, before any job starts, :class:`SweepTracking` creates the store, the
experiment and a *parent* MLflow run, and writes the sweep's manifest
(:mod:`reglab.sweeps.manifest`) to the sweep folder, from which every job learns its
parent run and experiment. When the sweep ends it writes the sweep's summary and report to
the parent run, sets the parent's status from its children, ends the console with the
counts, the report's Answer and where to look (report folder, parent run, MLflow UI), and
exits non-zero if any job failed.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from reglab.entry import on_interrupt, ui_command
from reglab.errors import Interrupted
from reglab.sweeps import manifest as manifests
from reglab.sweeps import outcomes
from reglab.timing import span, timed
from reglab.tracking.redaction import redact_hydra_copies

log = logging.getLogger("reglab")


class SweepTracking(Callback):
    """Store, experiment, parent run and manifest for sweeps, and the sweep's summary."""

    @timed("logging")
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = list(config.hydra.overrides.task)
        params = config.hydra.sweeper.get("params")
        sweep_params = OmegaConf.to_container(params) if params is not None else {}
        self.parent = None
        identity = {
            "sweep_id": manifests.new_sweep_id(),
            "sweep_dir": str(Path(config.hydra.sweep.dir)),
            "size": manifests.count_jobs(overrides, sweep_params),
            "started": time.time(),
            "signature": manifests.signature(overrides, sweep_params),
            "threads_per_job": manifests.threads_per_job(config.hydra.launcher),
        }
        log.info("sweep %s: %d jobs -> %s", identity["sweep_id"], identity["size"], identity["sweep_dir"])
        if config.logger.enabled:
            identity.update(self._start_parent(config, identity, overrides, sweep_params))
        self.manifest = manifests.SweepManifest(**identity)
        self.manifest.write()
        on_interrupt(self._interrupted)

    def _interrupted(self, interrupted: Interrupted) -> None:
        """SIGINT / SIGTERM: the parent is KILLED with the reason, and the log says what
        ran and the exact command that resumes the sweep."""
        results = outcomes.read_outcomes(Path(self.manifest.sweep_dir))
        finished = sum(o["status"] in ("FINISHED", "SKIPPED") for o in results)
        if self.parent is not None:
            self.parent.fail(interrupted)
        resume = shlex.join(
            [Path(sys.argv[0]).name if sys.argv[0].endswith("train.py") else sys.argv[0], *sys.argv[1:]]
        )
        if "+resume=true" not in sys.argv:
            resume += " +resume=true"
        log.error(
            "sweep %s %s: %d of %d jobs done, %d never ran; resume with: python %s",
            self.manifest.sweep_id,
            interrupted,
            finished,
            self.manifest.size,
            self.manifest.size - len(results),
            resume,
        )

    def _start_parent(self, config: DictConfig, identity: dict, overrides: list, sweep_params: dict) -> dict:
        from reglab import tracking
        from reglab.sweeps.resume import kill_abandoned_runs

        uri, experiment_id = tracking.experiment_of(config)
        if config.get("resume"):
            killed = kill_abandoned_runs(uri, experiment_id, identity["signature"])
            if killed:
                log.info("resume: marked %d runs left RUNNING by an earlier sweep as KILLED", killed)
        self.parent = tracking.TrackedRun(uri, experiment_id)
        self.parent.start(
            f"sweep-{identity['sweep_id']}",
            {
                "reglab.kind": "sweep",
                "reglab.sweep_id": identity["sweep_id"],
                "reglab.sweep_signature": identity["signature"],
                "reglab.overrides": " ".join(overrides) or "(none)",
                "reglab.sweep_dir": tracking.portable_paths(identity["sweep_dir"], config.paths.root_dir),
            },
        )
        self.parent.log_params({"sweep.jobs": str(identity["size"]), "sweep.overrides": " ".join(overrides)})
        self.parent.log_text(
            OmegaConf.to_yaml({"overrides": overrides, "sweeper_params": sweep_params}), "sweep.yaml"
        )
        return {"parent_run_id": self.parent.run_id, "experiment_id": experiment_id}

    @timed("sweep summary")
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        redact_hydra_copies(Path(self.manifest.sweep_dir))
        results = outcomes.read_outcomes(Path(self.manifest.sweep_dir))
        failed = [o for o in results if o["status"] == "FAILED"]
        skipped = sum(o["status"] == "SKIPPED" for o in results)
        elapsed = time.time() - self.manifest.started
        report, problem = None, None
        if self.parent is not None:
            table = outcomes.outcome_table(results)
            self.parent.log_text(table.to_csv(index=False), "summary/jobs.csv")
            self.parent.log_text(outcomes.markdown(table), "summary/jobs.md")
            self.parent.log_metrics(
                {
                    "sweep/jobs": len(results),
                    "sweep/failed": len(failed),
                    "sweep/skipped": skipped,
                    "sweep/seconds": elapsed,
                }
            )
            try:
                report = self._attach_report()
            except Exception as error:  # a report problem must not hide the sweep's outcome
                problem = f"sweep report not written: {error}"
            status = "FAILED" if failed or len(results) < self.manifest.size else "FINISHED"
            self.parent.client.set_terminated(self.parent.run_id, status)
        for outcome in failed:
            log.error("failed job %s (%s): %s", outcome["job"], outcome["overrides"], outcome["reason"])
        log.info(
            "sweep done in %.0fs: %d jobs, %d finished, %d skipped, %d failed",
            elapsed,
            len(results),
            sum(o["status"] == "FINISHED" for o in results),
            skipped,
            len(failed),
        )
        if problem is not None:
            log.warning(problem)
        if self.parent is not None:
            log.info("\n".join(self._where_to_look(report)))
        if failed:
            raise SystemExit(1)

    def _where_to_look(self, report) -> list[str]:
        """The sweep's last console lines after its counts: the Answer of its ``report``
        (when written), the report's folder, the parent run and how to open it in the UI."""
        lines = []
        if report is not None:
            from reglab.report.publish import NO_ANSWER, answer_lines

            answer = answer_lines(report.markdown) or [NO_ANSWER]
            lines += ["Answer:", *(f"  {line}" for line in answer), f"report: {report.directory}"]
        lines.append(f"MLflow parent run: {self.parent.run_id} (sweep-{self.manifest.sweep_id})")
        lines.append(f"browse: {ui_command(self.parent.uri)}")
        return lines

    def _attach_report(self):
        """Tables and figures of the sweep (:mod:`reglab.report`) as parent-run artifacts; the
        :class:`~reglab.report.Report` (``None`` when the report's modules are not installed)."""
        try:
            from reglab.report import write_report
        except ImportError:
            return None
        with span("sweep report"):
            return write_report(self.parent.uri, sweep_id=self.manifest.sweep_id)
