"""What reglab adds to Hydra's submitit launchers (``hydra/launcher=slurm`` and ``local``,
whose classes live in ``hydra_plugins.reglab_launchers``, where Hydra finds launchers).

On top of Hydra's submitit launchers (one array task per job):

- **Failed runs fail their task.** A job whose run FAILED (diverged, bad data, ...) ends its
  SLURM task with a non-zero exit status, so cluster tools (``sacct``, job arrays'
  dependencies, e-mail on failure) see the failure. The sweep still goes on: the launching
  process records the job as failed (NaN objective) instead of aborting the sweep, as the
  in-process launcher does.
- **Resume filters before submitting.** With ``+resume=true`` every job's config is composed
  and hashed in the launching process, and the ones that already have a FINISHED run in the
  experiment are recorded as SKIPPED there, never submitted: a resumed sweep queues only the
  tasks it still needs.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict

from reglab.sweeps import outcomes

log = logging.getLogger("reglab")

GRACE_S = 10  # a SLURM task out of the queue this long without a result has ended without one


class RunFailed(RuntimeError):
    """Raised in a task whose job's run FAILED, so that the task exits non-zero."""


class ReglabSubmitit:
    """What reglab adds to a Hydra submitit launcher (see the module docstring)."""

    def __call__(self, sweep_overrides, job_dir_key, job_num, job_id, singleton_state) -> JobReturn:
        result = super().__call__(sweep_overrides, job_dir_key, job_num, job_id, singleton_state)
        outcome = _outcome(Path(result.hydra_cfg.hydra.runtime.output_dir))
        if outcome is not None and outcome["status"] == "FAILED":
            raise RunFailed(f"job {job_num} failed: {outcome.get('reason')}")
        return result

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        numbered = list(enumerate(job_overrides, start=initial_job_idx))
        skipped = self._finished(numbered) if self.config.get("resume") else {}
        pending = [(num, overrides) for num, overrides in numbered if num not in skipped]
        returns = dict(skipped)
        if pending:
            returns.update(zip([num for num, _ in pending], self._submit(pending), strict=True))
        return [returns[num] for num, _ in numbered]

    def _submit(self, pending: list[tuple[int, Sequence[str]]]) -> list[JobReturn]:
        """Submit the pending jobs as one array; a task that failed comes back as a completed
        job with a NaN objective (its outcome file says why)."""
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        arguments = []
        for num, overrides in pending:
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
            arguments.append(
                (list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state())
            )
        jobs = executor.map_array(self, *zip(*arguments, strict=True))
        returns = []
        for (num, overrides), job in zip(pending, jobs, strict=True):
            returns.append(self._collect(job, num, overrides, sweep_dir / str(num)))
        return returns

    def _collect(self, job: Any, num: int, overrides: Sequence[str], job_dir: Path) -> JobReturn:
        """The job's return once its task has ended; a task that failed (its run FAILED) or
        ended without a result (killed, cancelled) is a completed job with a NaN objective."""
        import submitit

        if self._ended_with_result(job):
            try:
                return job.results()[0]
            except submitit.core.utils.FailedJobError:
                pass
        if _outcome(job_dir) is None:
            log.error("job %d: task %s ended without a result (killed or cancelled)", num, job.job_id)
            self._record_lost(job_dir, num, overrides, job)
        else:
            log.error("job %d failed: its task %s exits non-zero", num, job.job_id)
        return _nan_return(overrides, job_dir)

    def _ended_with_result(self, job: Any) -> bool:
        """Wait for the task to end: ``True`` once it has written a result. On SLURM a task
        that left the queue ``GRACE_S`` ago without one has ended without a result (submitit
        would ask ``sacct``, which a cluster without accounting cannot answer, and wait)."""
        gone_since = None
        while not job.paths.result_pickle.exists():
            if self._EXECUTOR != "slurm":
                if job.done():
                    return job.paths.result_pickle.exists()
            elif _queued(job.job_id):
                gone_since = None
            else:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > GRACE_S:
                    return False
            time.sleep(1)
        return True

    def _executor(self):
        """Hydra's executor set-up (parameters of ``hydra.launcher``), without launching."""
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            **{
                f"{self._EXECUTOR}_max_num_timeout": v
                for k, v in self.params.items()
                if k == "max_num_timeout"
            },
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                (k if k in shared else f"{self._EXECUTOR}_{k}"): v
                for k, v in self.params.items()
                if k not in init_keys
            }
        )
        return executor

    def _finished(self, numbered: list[tuple[int, Sequence[str]]]) -> dict[int, JobReturn]:
        """Jobs whose config already has a FINISHED run: recorded SKIPPED, not submitted."""
        from reglab.config import check_job
        from reglab.sweeps.job import skip_if_finished, with_sweep_identity
        from reglab.sweeps.manifest import SweepManifest

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        manifest = SweepManifest.read(sweep_dir)
        skipped = {}
        for num, overrides in numbered:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                del cfg["hydra"]
            cfg = with_sweep_identity(check_job(cfg), manifest)  # a task checks its job again
            objective = skip_if_finished(cfg, num, sweep_dir / str(num), overrides)
            if objective is not None:
                skipped[num] = _nan_return(overrides, sweep_dir / str(num), objective)
        if skipped:
            log.info("resume: %d of %d jobs already FINISHED, not submitted", len(skipped), len(numbered))
        return skipped

    @staticmethod
    def _record_lost(job_dir: Path, num: int, overrides: Sequence[str], job: Any) -> None:
        """A task killed or cancelled before its job wrote an outcome is recorded FAILED."""
        if _outcome(job_dir) is None:
            outcomes.write_outcome(
                job_dir,
                job=num,
                status="FAILED",
                overrides=overrides,
                reason=f"task {job.job_id} ended without a result (cancelled or killed)",
            )


def _queued(job_id: str) -> bool:
    """Whether SLURM still lists the task (pending, running or completing)."""
    listed = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


def _outcome(job_dir: Path) -> dict | None:
    path = job_dir / outcomes.OUTCOME_FILE
    if not path.is_file():
        return None
    import json

    return json.loads(path.read_text())


def _nan_return(overrides: Sequence[str], job_dir: Path, objective: float = math.nan) -> JobReturn:
    return JobReturn(
        overrides=list(overrides),
        working_dir=str(job_dir),
        status=JobStatus.COMPLETED,
        _return_value=objective,
    )
