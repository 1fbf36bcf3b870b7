"""A run whose loss explodes is FAILED as diverged, with the reason, while staying finite."""

from __future__ import annotations

import pytest
import torch
from conftest import all_runs, store_uri

import reglab
from reglab.config import compose
from reglab.divergence import HINT, DivergenceGuard, divergence_reason, not_finite_at_end
from reglab.errors import ConfigError, DivergedError

QUICK = ["model.hidden=[16]", "trainer.max_epochs=3"]


def test_an_exploding_but_finite_run_fails_with_the_reason(output_dir):
    with pytest.raises(DivergedError, match=r"above 100 x the untrained model's loss .* training diverged"):
        reglab.run([*QUICK, "optimizer.lr=1e6", f"paths.output_dir={output_dir}"])
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.status == "FAILED"
    assert "DivergedError" in run.data.tags["reglab.failure_reason"]
    assert "diverged" in run.data.tags["reglab.failure_reason"]


def test_a_healthy_run_is_not_flagged():
    result = reglab.run([*QUICK, "logger=none"])
    assert result.metrics["test/acc"] > 0.5  # digits: chance is 0.1


def test_the_ratio_is_configurable_and_checked():
    with pytest.raises(
        ConfigError, match=r"callbacks\.divergence\.max_ratio=1\.0 is not allowed: must be a number > 1"
    ):
        reglab.run([*QUICK, "callbacks.divergence.max_ratio=1.0", "logger=none"])
    assert compose(["callbacks.divergence.max_ratio=5"]).callbacks.divergence.max_ratio == 5


class _Trainer:
    def __init__(self, **metrics) -> None:
        self.callback_metrics = {k.replace("__", "/"): torch.tensor(v) for k, v in metrics.items()}
        self.current_epoch, self.sanity_checking, self.should_stop = 4, False, False


@pytest.mark.parametrize(
    ("metrics", "diverged"),
    [
        ({"train__data_loss": 9.9, "val__loss": 1.0}, False),  # below 5 x 2.0
        ({"train__data_loss": 10.1, "val__loss": 1.0}, True),
        ({"train__data_loss": 1.0, "val__loss": 10.1}, True),
        ({"train__data_loss": float("nan"), "val__loss": 1.0}, True),
        ({"val__loss": float("inf")}, True),
    ],
)
def test_the_rule_is_ratio_to_the_untrained_loss_or_non_finite(metrics, diverged):
    guard, trainer = DivergenceGuard(max_ratio=5.0), _Trainer(**metrics)
    guard.reference = 2.0
    guard.on_train_epoch_end(trainer, None)  # epoch 4's train/data_loss: published after this hook
    guard.on_validation_end(trainer, None)
    guard.on_train_end(trainer, None)
    assert (guard.reason is not None) is diverged and trainer.should_stop is diverged
    assert not diverged or "at epoch 4" in guard.reason


def test_one_rule_and_one_hint_for_every_reason():
    """The rule both engines call: its reasons, the guard keeping the first, the end check."""
    assert divergence_reason("val/loss", 9.9, 2.0, 5.0, 3) is None
    assert divergence_reason("val/loss", 1e9, None, 5.0, 3) is None  # no reference yet: finite is healthy
    above = divergence_reason("val/loss", 10.1, 2.0, 5.0, 3)
    assert above == f"val/loss is 10.1 at epoch 3, above 5 x the untrained model's loss 2: {HINT}"
    assert divergence_reason("train/data_loss", float("nan"), 2.0, 5.0, 0).endswith(f"at epoch 0: {HINT}")
    guard = DivergenceGuard(max_ratio=5.0)
    guard.reference = 2.0
    assert guard.check("val/loss", 1.0, 0) is None
    assert guard.check("val/loss", 11.0, 1) == guard.check("val/loss", float("inf"), 2) == guard.reason
    assert "at epoch 1" in guard.reason
    assert not_finite_at_end({"train/loss": 1.0, "val/loss": 2.0}, 4) is None
    end = not_finite_at_end({"train/loss": 1.0, "val/loss": float("nan")}, 4)
    assert end == f"val/loss is nan at the end of training (epoch 4): {HINT}"


@pytest.mark.slow
def test_a_sweep_with_a_diverging_job_goes_on_and_exits_non_zero(cli_diverging_sweep):
    # -m optimizer=adam,sgd optimizer.lr=0.01,50 trainer.max_epochs=2
    result, output_dir = cli_diverging_sweep
    assert result.returncode == 1, result.stderr[-2000:]
    children = [r for r in all_runs(store_uri(output_dir)) if "reglab.kind" not in r.data.tags]
    status = {(r.data.params["choice.optimizer"], float(r.data.params["optimizer.lr"])): r for r in children}
    assert len(status) == 4
    for optimizer in ("adam", "sgd"):
        assert status[(optimizer, 0.01)].info.status == "FINISHED"
        assert status[(optimizer, 50.0)].info.status == "FAILED"
        assert "diverged" in status[(optimizer, 50.0)].data.tags["reglab.failure_reason"]
