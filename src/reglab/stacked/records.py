"""After a stack is trained: each member tested and recorded as its sequential run is.

Each member's best-epoch state goes back into its own model, which is tested by a
:class:`~reglab.module.RegularizedModule` under ``trainer.test`` (the sequential test code);
its history, fit record, checkpoint, final metrics and MLflow run (same params, config,
metric names and per-epoch steps as a sequential run, plus the tags ``reglab.engine`` and
``reglab.stack_id``) are written by the functions the sequential path uses.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from reglab.divergence import not_finite_at_end
from reglab.errors import DivergedError, error_reason
from reglab.fit import FitRecord, record_test, tested_selection
from reglab.stacked.members import Member, StackedState
from reglab.stacked.module import StackedModule
from reglab.sweeps import outcomes
from reglab.sweeps.job import OBJECTIVE

log = logging.getLogger("reglab")


def record_member(
    position: int,
    module: StackedModule,
    state: StackedState,
    tester,
    stopped_early: bool,
    fit_seconds: float,
) -> dict[str, float]:
    """Test and record member ``position``; returns its final metrics (none when it FAILED)."""
    from reglab.module import RegularizedModule
    from reglab.pipeline import run_logging, start_tracking

    member: Member = module.members[position]
    parts = member.components
    outcome = {"job": member.num, "overrides": member.overrides}
    with run_logging(member.job_dir / "train.log", verbose=False):
        tracked = None
        if member.cfg.logger.enabled:
            tags = {"reglab.engine": "stacked", "reglab.stack_id": module.settings.stack_id}
            tracked = start_tracking(member.cfg, member.overrides, member.choices, tags)
            outcome["run_id"] = member.run_id = tracked.run_id
        history = member.history = dict(module.histories[position])
        if tracked is not None:
            epochs = module.history_epochs[position]
            tracked.log_metric_rows(
                [(k, v, e) for k in history for v, e in zip(history[k], epochs[k], strict=True)]
            )
        reason = module.failure[position] or not_finite_at_end(
            module.last_values[position], module.epochs[position]
        )
        if reason is not None:
            diverged = DivergedError(reason)
            if tracked is not None:
                tracked.fail(diverged)
            log.error("job %d failed: %s", member.num, reason)
            outcomes.write_outcome(member.job_dir, **outcome, status="FAILED", reason=error_reason(diverged))
            return {}
        parts.model.to(module.stacked[0].dtype)  # float64 under trainer.precision=64, as the fit ran
        parts.model.load_state_dict(state.member_state(module.best_states, position, parts.model))
        tested_module = RegularizedModule(
            parts.model, parts.regularizer, parts.optimizer, parts.datamodule.task, parts.datamodule.n_outputs
        )
        rule = module.best[position]  # the member's own BestWeights, applied during the fit
        selection = tested_selection(
            list(module.history_epochs[position].get("val/loss", [])),
            None if rule is None else rule.best_epoch,
            None if rule is None else rule.monitor,
            "min" if rule is None else rule.mode,
        )
        record = FitRecord(member.job_dir / "fit_record.json").write(
            history, module.epochs[position], stopped_early, selection
        )
        if rule is not None and rule.save and rule.best_epoch is not None:
            folder = Path(rule.dirpath or member.job_dir / "checkpoints")
            rule.write(folder, tested_module.state_dict(), rule.best_epoch, rule.best_score)
        tested = tester.test(tested_module, dataloaders=parts.datamodule.test_dataloader(), verbose=False)
        if tracked is not None and tested:
            tracked.log_metrics(tested[0], step=module.epochs[position])
        metrics = record_test(tested_module, parts.datamodule, tested, record, fit_seconds, tracked)
        if tracked is not None:
            tracked.finish()
    objective = metrics.get(OBJECTIVE, math.nan)
    outcomes.write_outcome(member.job_dir, **outcome, status="FINISHED", objective=objective)
    return metrics
