"""``reglab.run`` from Python: the same job as the CLI, returning metrics, run id and model."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import all_runs, store_uri

import reglab


def test_run_returns_metrics_run_id_and_trained_model(output_dir):
    result = reglab.run(["regularizer=l1", "trainer.max_epochs=2", f"paths.output_dir={output_dir}"])
    assert {"test/acc", "test/loss", "fit/best_epoch"} <= set(result.metrics)
    x, y = result.data.tensors["test"]
    result.model.eval()
    with torch.no_grad():
        logits = result.model(x)
    # the returned model is the one tested, and it learned: digits has 10 classes (chance 0.1)
    assert (logits.argmax(dim=1) == y).float().mean().item() == pytest.approx(result.metrics["test/acc"])
    assert torch.nn.functional.cross_entropy(logits, y).item() == pytest.approx(
        result.metrics["test/loss"], rel=1e-5
    )
    assert result.metrics["test/acc"] > 0.8
    runs = all_runs(store_uri(output_dir))
    assert [r.info.run_id for r in runs] == [result.run_id]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].info.run_name == "regularizer=l1,trainer.max_epochs=2"
    assert runs[0].data.metrics["test/acc"] == pytest.approx(result.metrics["test/acc"])


def test_early_stopping_stops_and_the_best_epoch_is_tested(output_dir):
    """A wide unregularized MLP overfits 15% of digits quickly; patience 2 stops it."""
    result = reglab.run(
        [
            "regularizer=none",
            "model.hidden=[512,512]",
            "optimizer.lr=0.01",
            "callbacks.early_stopping.patience=2",
            "trainer.max_epochs=60",
            f"paths.output_dir={output_dir}",
        ]
    )
    metrics = result.metrics
    assert metrics["fit/stopped_early"] == 1
    assert metrics["fit/epochs"] < 60
    assert metrics["fit/best_epoch"] == metrics["fit/epochs"] - 1 - 2  # patience epochs after best
    checkpoints = list((result.run_dir / "checkpoints").glob("*.ckpt"))
    assert [c.name for c in checkpoints] == [f"best-epoch={int(metrics['fit/best_epoch'])}.ckpt"]
    best = torch.load(checkpoints[0], map_location="cpu", weights_only=False)["state_dict"]
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, best[f"model.{name}"])


def test_same_seed_same_metrics_other_seed_other_metrics():
    common = ["logger=none", "trainer.max_epochs=2", "dropout=0.2"]
    first = reglab.run([*common, "seed=3"]).metrics
    again = reglab.run([*common, "seed=3"]).metrics
    other = reglab.run([*common, "seed=4"]).metrics
    for key in ("test/loss", "test/acc", "fit/best_val_loss"):
        assert first[key] == again[key]
    assert first["test/loss"] != other["test/loss"]


@pytest.mark.parametrize("regularizer", ["elastic", "l1", "group_lasso"])
def test_train_penalty_is_the_penalty_of_the_epochs_final_weights(regularizer):
    result = reglab.run(
        [
            f"regularizer={regularizer}",
            "regularizer.strength=0.01",
            "logger=none",
            "callbacks=none",
            "trainer.max_epochs=3",
        ]
    )
    from hydra.utils import instantiate

    history = result.history
    regularizer = instantiate(result.config.regularizer)
    final = regularizer.penalty(regularizer.select(result.model)).item()
    assert history["train/penalty"][-1] == pytest.approx(final, rel=1e-6)
    assert len(set(history["train/penalty"])) == 3  # one value per epoch, and they change
    for loss, data_loss, penalty in zip(
        history["train/loss"], history["train/data_loss"], history["train/penalty"], strict=True
    ):
        assert loss == pytest.approx(data_loss + penalty, rel=1e-6)


def test_long_param_values_are_kept_whole(output_dir):
    hidden = [3] * 120  # "[3, 3, ...]" is 360 characters: over MLflow's old 250 limit
    result = reglab.run(
        [
            f"model.hidden=[{','.join(map(str, hidden))}]",
            "trainer.max_epochs=1",
            "callbacks=none",
            f"paths.output_dir={output_dir}",
        ]
    )
    run = next(r for r in all_runs(store_uri(output_dir)) if r.info.run_id == result.run_id)
    assert json.loads(run.data.params["model.hidden"]) == hidden


def test_regression_task_logs_mse_and_r2(output_dir):
    result = reglab.run(
        [
            "data=diabetes",
            "model=linear",
            "regularizer=l2",
            "trainer.max_epochs=60",  # Adam's default step: the targets are standardized
            f"paths.output_dir={output_dir}",
        ]
    )
    assert {"test/mse", "test/mae", "test/r2", "test/loss", "gap/loss"} <= set(result.metrics)
    # the loss is the MSE in units of the training targets' variance (standardized targets);
    # test/mse is in the target's own units
    variance = float(result.data.target_scale[1].square())
    assert result.metrics["test/mse"] == pytest.approx(result.metrics["test/loss"] * variance, rel=1e-5)
    assert result.metrics["test/r2"] > 0.3


def test_generalization_gap_is_taken_at_the_best_epoch():
    from reglab.fit import fit_summary

    history = {
        "val/loss": [0.9, 0.5, 0.5, 0.7],
        "train/data_loss": [1.0, 0.4, 0.3, 0.1],
        "train/acc": [0.5, 0.8, 0.9, 1.0],
        "val/acc": [0.4, 0.7, 0.75, 0.7],
    }
    summary = fit_summary(history)
    assert summary["fit/best_epoch"] == 1  # the first of tied minima, as the checkpoint keeps it
    assert summary["gap/loss"] == pytest.approx(0.1)
    assert summary["gap/acc"] == pytest.approx(0.1)


def test_a_diverging_run_raises_and_is_failed_with_the_reason(output_dir):
    from reglab.errors import DivergedError

    with pytest.raises(DivergedError, match="diverged"):
        reglab.run(
            [
                "optimizer=sgd",
                "optimizer.lr=1e4",
                "regularizer=none",
                "trainer.max_epochs=5",
                f"paths.output_dir={output_dir}",
            ]
        )
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["reglab.failure_reason"]


def test_tracking_uri_from_the_environment_is_honoured(output_dir, tmp_path, monkeypatch):
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    result = reglab.run(["trainer.max_epochs=1", f"paths.output_dir={output_dir}"])
    assert not (output_dir / "mlflow.db").exists()
    assert [(r.info.run_id, r.info.status) for r in all_runs(elsewhere)] == [(result.run_id, "FINISHED")]
