"""What a run reports beyond the standard metrics: ``test/model_error`` on synthetic
designs and the one console line per epoch."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from conftest import all_runs, store_uri

import reglab


def test_model_error_is_the_test_mse_against_the_noise_free_target(output_dir):
    """README: synthetic regression runs log ``test/model_error`` against the noise-free
    target. Dropout makes train and eval mode differ: it must be the tested (eval) model."""
    result = reglab.run(
        [
            "data=synthetic",
            "model.hidden=[32]",
            "dropout=0.3",
            "trainer.max_epochs=3",
            "callbacks=none",
            f"paths.output_dir={output_dir}",
        ]
    )
    x, y = result.data.tensors["test"]
    clean = result.data.clean_targets["test"]
    assert clean.shape == y.shape and not torch.equal(clean, y)  # sigma 3: noisy targets
    result.model.eval()
    with torch.no_grad():
        prediction = result.model(x)
    expected = (prediction - clean).square().mean().item()
    assert result.metrics["test/model_error"] == pytest.approx(expected, rel=1e-5)
    # not the test MSE: that one also holds the noise (variance 9 for tibshirani_1)
    assert result.metrics["test/mse"] == pytest.approx((prediction - y).square().mean().item(), rel=1e-5)
    assert abs(result.metrics["test/mse"] - expected) > 3
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.run_id == result.run_id
    assert run.data.metrics["test/model_error"] == pytest.approx(expected, rel=1e-5)


def test_no_model_error_without_a_noise_free_target():
    result = reglab.run(
        ["data=diabetes", "model=linear", "trainer.max_epochs=1", "callbacks=none", "logger=none"]
    )
    assert "test/mse" in result.metrics and "test/model_error" not in result.metrics


EPOCH_LINE = re.compile(
    r"^epoch (\d+)/(\d+)  train/loss ([0-9.]+)  train/penalty ([0-9.]+)  val/loss ([0-9.]+)  "
    r"val/acc ([0-9.]+)  \(\d+\.\ds\)$"
)


@pytest.mark.parametrize(("epochs", "every", "reported"), [(3, 1, [1, 2, 3]), (5, 2, [2, 4, 5])])
def test_one_console_line_per_epoch_with_the_epochs_numbers(caplog, tmp_path, epochs, every, reported):
    caplog.set_level(logging.INFO, logger="reglab")
    result = reglab.run(
        [
            f"trainer.max_epochs={epochs}",
            "callbacks.early_stopping.patience=100",
            f"callbacks.epoch_summary.every_n_epochs={every}",
            "logger=none",
            f"paths.output_dir={tmp_path}",
        ]
    )
    lines = [
        r.getMessage() for r in caplog.records if r.name == "reglab" and r.getMessage().startswith("epoch ")
    ]
    matches = [EPOCH_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches] == reported
    assert {int(m.group(2)) for m in matches} == {epochs}
    history = result.history
    for m in matches:  # the numbers of the epoch it names (1-based), as recorded
        index = int(m.group(1)) - 1
        for group, key in ((3, "train/loss"), (4, "train/penalty"), (5, "val/loss"), (6, "val/acc")):
            assert float(m.group(group)) == pytest.approx(history[key][index], abs=1e-4), (m.group(0), key)


def test_no_epoch_lines_without_the_callback(caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="reglab")
    reglab.run(["trainer.max_epochs=2", "callbacks=none", "logger=none", f"paths.output_dir={tmp_path}"])
    assert not [r for r in caplog.records if r.getMessage().startswith("epoch ")]
