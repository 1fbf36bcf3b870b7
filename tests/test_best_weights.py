"""reglab.best_weights.BestWeights: the best epoch's weights, kept in memory and restored."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

import reglab
from reglab.best_weights import BestWeights, improves
from reglab.errors import ConfigError


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _Snapshots(Callback):
    """The module's weights after every validation (as BestWeights sees them)."""

    def __init__(self) -> None:
        self.by_epoch: list[dict[str, torch.Tensor]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.by_epoch.append(_weights(pl_module))


def test_the_first_best_epoch_is_restored_tested_and_saved_once(tmp_path):
    snapshots = _Snapshots()
    result = reglab.run(
        [
            "regularizer=none",
            "model.hidden=[256,256]",
            "optimizer.lr=0.01",
            "trainer.max_epochs=12",
            "callbacks.early_stopping.patience=100",
            "batchnorm=true",
            "logger=none",
            f"paths.output_dir={tmp_path}",
        ],
        callbacks=[snapshots],
    )
    val_loss = result.history["val/loss"]
    best = val_loss.index(min(val_loss))
    assert best < len(val_loss) - 1, "the run should overfit after its best epoch"
    assert result.metrics["fit/best_epoch"] == best
    restored = {f"model.{k}": v for k, v in result.model.state_dict().items()}
    for name, tensor in snapshots.by_epoch[best].items():  # batch-norm statistics included
        torch.testing.assert_close(restored[name], tensor, rtol=0, atol=0)
    (saved,) = (result.run_dir / "checkpoints").glob("*.ckpt")
    assert saved.name == f"best-epoch={best}.ckpt"
    content = torch.load(saved, weights_only=True)
    assert content["epoch"] == best and content["score"] == pytest.approx(val_loss[best], rel=1e-6)
    for name, tensor in content["state_dict"].items():
        torch.testing.assert_close(tensor, snapshots.by_epoch[best][name], rtol=0, atol=0)
    assert result.metrics["test/loss"] == pytest.approx(_test_loss(result), rel=1e-5), (
        "the test stage must see the restored weights"
    )


def _test_loss(result) -> float:
    x, y = result.data.tensors["test"]
    result.model.eval()
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(result.model(x), y).item()


def test_save_false_writes_nothing(tmp_path):
    result = reglab.run(
        [
            "trainer.max_epochs=2",
            "callbacks.best_weights.save=false",
            "logger=none",
            f"paths.output_dir={tmp_path}",
        ]
    )
    assert not (result.run_dir / "checkpoints").exists()


def test_lightning_model_checkpoint_in_its_place_is_what_gets_tested(tmp_path):
    result = reglab.run(
        [
            "~callbacks.best_weights",
            "+callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint",
            "+callbacks.model_checkpoint.monitor=val/loss",
            "trainer.max_epochs=3",
            "logger=none",
            f"paths.output_dir={tmp_path}",
        ]
    )
    (saved,) = (result.run_dir / "checkpoints").glob("*.ckpt")
    state = torch.load(saved, weights_only=False)["state_dict"]
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, state[f"model.{name}"])


def test_improvement_is_strict_and_never_non_finite():
    assert improves(0.5, 1.0, "min") and not improves(1.0, 1.0, "min") and not improves(math.nan, 1.0, "min")
    assert improves(2.0, 1.0, "max") and not improves(1.0, 1.0, "max") and not improves(math.inf, 1.0, "max")
    best = BestWeights(mode="max")
    assert best.consider(0.5, 0) and not best.consider(0.5, 1) and best.consider(0.75, 2)
    assert not best.consider(math.nan, 3) and (best.best_epoch, best.best_score) == (2, 0.75)
    best.reset()
    assert best.best_epoch is None and best.best_score == -math.inf
    message = r"callbacks.best_weights.mode=.lowest. is not allowed: must be one of min, max"
    with pytest.raises(ConfigError, match=message):
        BestWeights(mode="lowest")
