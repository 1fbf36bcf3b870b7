"""A stack as the unit of work on a cluster: ``hydra.launcher.executor=slurm`` (or ``local``)
submits one submitit job per stack instead of training the stacks in the launching process.

The launching process composes, checks and prepares every job as usual (a bad value still
stops the sweep before anything is submitted); each task receives its stack's member configs,
rebuilds the members (:func:`reglab.pipeline.prepare`: same split, same initialization), trains
them with :func:`reglab.stacked.fit.train_stack` and returns their final metrics. A 1,000-run
study of small models is then a handful of GPU jobs rather than a 1,000-task array.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from reglab.stacked.members import Member

log = logging.getLogger("reglab")
EXECUTORS = ("local", "slurm")


def member_spec(member: Member) -> dict[str, Any]:
    """What a task needs to rebuild a member: plain data, picklable."""
    return {
        "num": member.num,
        "cfg": OmegaConf.to_container(member.cfg),
        "overrides": member.overrides,
        "choices": member.choices,
        "job_dir": str(member.job_dir),
    }


def train_stack_task(specs: list[dict[str, Any]], stack_id: str, max_members: int) -> list[dict[str, float]]:
    """The body of a submitted task: rebuild the members and train them as one stack."""
    from reglab.entry import import_run_modules
    from reglab.pipeline import prepare
    from reglab.stacked.fit import train_stack

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    members = []
    for spec in specs:
        cfg = OmegaConf.create(spec["cfg"])
        members.append(
            Member(spec["num"], cfg, spec["overrides"], spec["choices"], Path(spec["job_dir"]), prepare(cfg))
        )
    import_run_modules(with_mlflow=bool(members[0].cfg.logger.enabled))
    return train_stack(members, stack_id, max_members)


def submit_stacks(
    stacks: list[tuple[str, list[Member]]],
    executor_name: str,
    parameters: dict,
    folder: Path,
    max_members: int,
) -> list[list[dict[str, float]]]:
    """Submit one task per stack and wait for them; a task that fails or dies gives its
    members no metrics (they are recorded FAILED, the sweep goes on)."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=executor_name)
    executor.update_parameters(**parameters)
    jobs = [
        executor.submit(train_stack_task, [member_spec(m) for m in members], stack_id, max_members)
        for stack_id, members in stacks
    ]
    for (stack_id, members), job in zip(stacks, jobs, strict=True):
        log.info(
            "stack %s (%d members) submitted as %s job %s", stack_id, len(members), executor_name, job.job_id
        )
    results = []
    for (stack_id, members), job in zip(stacks, jobs, strict=True):
        try:
            results.append(job.result())
        except Exception as error:  # the task failed or was killed: its members FAILED
            log.error("stack %s: task %s ended without results: %s", stack_id, job.job_id, error)
            from reglab.stacked.fit import record_all

            record_all(members, "FAILED", f"stack task {job.job_id} ended without results")
            results.append([{} for _ in members])
    return results
