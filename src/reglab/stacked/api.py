"""Stacked training from Python: :func:`run_stacked`, the launcher's engine without Hydra's
sweep machinery (for scripts that train many small configurations)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

log = logging.getLogger("reglab")


def run_stacked(
    jobs: Sequence[Sequence[str]], max_members: int = 128, verbose: bool = True
) -> list[dict[str, float]]:
    """Train each job (a list of overrides, the CLI's syntax) and return its final metrics
    (an empty dict for a job that FAILED), in order. Jobs that stack
    (:mod:`reglab.stacked.plan`) are trained as stacks of at most ``max_members``; the others
    by :func:`reglab.run`. Job ``i`` writes to ``<paths.output_dir>/api/<date>/<time>/<i>/``;
    with the MLflow logger each job is its own run (tags ``reglab.engine``, ``reglab.stack_id``).

    >>> results = run_stacked([["seed=0"], ["seed=1"], ["seed=2", "regularizer=l1"]])
    >>> [r["test/acc"] for r in results]
    """
    from reglab.config import compose_with_choices, sync_knobs, validate
    from reglab.pipeline import prepare, run, run_logging
    from reglab.stacked import plan
    from reglab.stacked.fit import train_stack
    from reglab.stacked.members import Member

    stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    results: dict[int, dict[str, float]] = {}
    prepared, keys = [], []
    for i, overrides in enumerate(jobs):
        cfg, choices = compose_with_choices(list(overrides))
        validate(cfg)
        sync_knobs(cfg)
        reason = plan.why_not_stackable(cfg)
        if reason is not None:
            log.info("job %d runs on its own (not stacked): %s", i, reason)
            results[i] = run(list(overrides), verbose=verbose).metrics
            continue
        job_dir = Path(cfg.paths.output_dir) / "api" / stamp / str(i)
        prepared.append(Member(i, cfg, list(overrides), choices, job_dir, prepare(cfg)))
        keys.append(plan.stack_key(cfg))
    log_dir = Path(prepared[0].cfg.paths.output_dir) / "api" / stamp if prepared else None
    for number, positions in enumerate(plan.stacks(keys, max_members), start=1):
        members = [prepared[p] for p in positions]
        with run_logging(log_dir / "train.log", verbose):
            for member, metrics in zip(
                members, train_stack(members, f"api-{number}", max_members), strict=True
            ):
                results[member.num] = metrics
    return [results[i] for i in range(len(jobs))]
