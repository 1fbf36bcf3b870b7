"""Several processes and other launchers: ddp_spawn over gloo on CPU, submitit's local executor."""

from __future__ import annotations

import pytest
from conftest import all_runs, run_cli, store_uri

import reglab


@pytest.mark.slow
def test_ddp_spawn_on_two_cpu_processes_leaves_one_run_matching_one_process(output_dir):
    common = ["trainer.max_epochs=2", f"paths.output_dir={output_dir}"]
    spawned = reglab.run(["trainer=ddp_spawn", "trainer.devices=2", *common])
    runs = all_runs(store_uri(output_dir))
    assert [(r.info.run_id, r.info.status) for r in runs] == [(spawned.run_id, "FINISHED")]
    assert runs[0].data.params["trainer.strategy"] == "ddp_spawn"
    single = reglab.run(["logger=none", *common])
    for key in ("test/acc", "test/loss", "fit/best_val_loss"):
        assert spawned.metrics[key] == pytest.approx(single.metrics[key], abs=0.02), key
    assert spawned.metrics["fit/epochs"] == 2 and "fit/best_epoch" in spawned.metrics


def test_gpu_trainer_without_cuda_fails_fast_naming_the_key(output_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    done = run_cli(["trainer=gpu"], output_dir, timeout=120)
    assert done.returncode == 2
    assert "trainer.accelerator='gpu' is not available" in done.stderr
    assert all_runs(store_uri(output_dir)) == []


@pytest.mark.slow
def test_sweep_through_submitit_local_executor(output_dir):
    done = run_cli(["-m", "hydra/launcher=local", "regularizer=none,l2", "trainer.max_epochs=2"], output_dir)
    assert done.returncode == 0, done.stderr
    runs = all_runs(store_uri(output_dir))
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and {r.info.status for r in runs} == {"FINISHED"}
