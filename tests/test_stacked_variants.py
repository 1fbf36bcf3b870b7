"""The knobs a user sets, each trained both ways: in float64 a job either trains stacked and
equals its sequential run (histories, best and stopped epochs, test metrics, to 1e-9), or the
stacked engine sends it to the ordinary path and says why."""

from __future__ import annotations

import logging
import re

import pytest

# Short float64 fits on digits (an MLP with 16 hidden units); each variant changes one thing.
BASE = [
    "+trainer.precision=64",
    "logger=none",
    "trainer.max_epochs=3",
    "data.batch_size=256",
    "optimizer.lr=1e-2",
    "regularizer=elastic",
]
STACKED = {
    "callbacks fixed_budget": ["callbacks=fixed_budget"],
    "callbacks none": ["callbacks=none"],
    "early stopping on val/acc": [
        "callbacks.early_stopping.monitor=val/acc",
        "callbacks.early_stopping.mode=max",
    ],
    "patience 0 and min_delta": [
        "callbacks.early_stopping.patience=0",
        "callbacks.early_stopping.min_delta=1e-3",
    ],
    "SGD with Nesterov": ["optimizer=sgd", "optimizer.nesterov=true", "optimizer.lr=1e-2"],
    "AdamW weight decay": ["optimizer=adamw", "optimizer.weight_decay=0.05"],
    "proximal L1": ["regularizer=l1", "regularizer.mode=proximal", "regularizer.strength=1e-2"],
    "proximal elastic": ["regularizer.mode=proximal", "regularizer.l1_ratio=0.3"],
    "group lasso": ["regularizer=group_lasso", "regularizer.strength=1e-2"],
    "max-norm": ["regularizer=max_norm", "regularizer.max_norm=0.5"],
    "full batch": ["data.batch_size=null", "trainer.max_epochs=6"],
    "include_bias": ["regularizer.include_bias=true"],
    "linear regression": ["data=diabetes", "model=linear", "regularizer=l2"],
    "binary logistic": ["data=breast_cancer", "model=linear", "regularizer=l1"],
    "batch norm": ["batchnorm=true"],
    "dropout": ["dropout=0.3"],
    "divergence ratio": ["callbacks.divergence.max_ratio=2.0"],
}
ORDINARY = {  # what the stacked engine cannot honour, and the reason it gives
    "gradient clipping": (["+trainer.gradient_clip_val=0.5"], "trainer.gradient_clip_val=0.5"),
    "accumulation": (["+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches=2"),
}
SEEDS = (0, 1)  # two members per variant: the second is compared with its sequential run
COMPARED = ("test/", "best/", "gap/", "fit/best_epoch", "fit/epochs", "fit/stopped_early")


def job(variant: list[str], seed: int, output_dir) -> list[str]:
    small = [] if any(o.startswith("model=") for o in variant) else ["model.hidden=[16]"]
    return [*BASE, *small, *variant, f"seed={seed}", f"paths.output_dir={output_dir}"]


@pytest.mark.slow
def test_every_knob_variant_trains_stacked_equal_to_its_sequential_run_or_says_why_not(output_dir, caplog):
    import reglab
    from reglab.stacked.api import run_stacked

    variants = {**STACKED, **{name: overrides for name, (overrides, _) in ORDINARY.items()}}
    jobs = [job(overrides, seed, output_dir / "stacked") for overrides in variants.values() for seed in SEEDS]
    with caplog.at_level(logging.INFO, logger="reglab"):
        results = run_stacked(jobs, verbose=False)
    said = {}  # job position -> the line saying why it runs on its own
    for line in (r.getMessage() for r in caplog.records):
        if found := re.match(r"job (\d+) runs on its own \(not stacked\): ", line):
            said[int(found[1])] = line
    ordinary = {len(STACKED) * len(SEEDS) + i for i in range(len(ORDINARY) * len(SEEDS))}
    assert set(said) == ordinary, said
    for position, line in said.items():
        _, reason = list(ORDINARY.values())[(position - len(STACKED) * len(SEEDS)) // len(SEEDS)]
        assert reason in line, line
    assert all("test/loss" in r.metrics for r in results)

    for number, (name, overrides) in enumerate(STACKED.items()):
        mine = results[number * len(SEEDS) + 1]
        theirs = reglab.run(job(overrides, SEEDS[1], output_dir / name.replace(" ", "_")), verbose=False)
        assert set(mine.history) == set(theirs.history), name
        for key, values in theirs.history.items():
            assert mine.history[key] == pytest.approx(values, rel=1e-9, abs=1e-12), (name, key)
        for key, value in theirs.metrics.items():
            if key.startswith(COMPARED):
                assert mine.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, key)
        assert len(theirs.history["val/loss"]) >= 2, name  # trained, not a one-epoch stop
