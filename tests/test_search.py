"""The Optuna driver: trials as MLflow children, pruning, best params on the parent, resume."""

from __future__ import annotations

import pytest
from conftest import all_runs, store_uri

from reglab import search

SPEC = """
study_name: test-study
n_trials: 8
metric: val/loss
direction: minimize
sampler_seed: 0
pruner: {n_startup_trials: 2, n_warmup_steps: 1}
storage: null
overrides:
  - regularizer=elastic
  - trainer.max_epochs=6
  - model.hidden=[64]
space:
  regularizer.strength: {type: float, low: 1.0e-5, high: 1.0, log: true}
  dropout: {type: float, low: 0.0, high: 0.6}
  optimizer.lr: {type: categorical, choices: [1.0e-4, 1.0e-3, 1.0e-2]}
"""


@pytest.mark.slow
def test_search_prunes_logs_children_and_best_params_and_resumes(output_dir, tmp_path, capsys):
    spec = tmp_path / "small.yaml"
    spec.write_text(SPEC)
    study = search.main(["--search", str(spec), f"paths.output_dir={output_dir}"])
    import optuna

    states = [t.state for t in study.trials]
    assert len(states) == 8
    assert optuna.trial.TrialState.PRUNED in states
    assert optuna.trial.TrialState.COMPLETE in states
    runs = all_runs(store_uri(output_dir))
    (parent,) = [r for r in runs if r.data.tags.get("reglab.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 8
    assert sum(r.data.tags.get("reglab.pruned") == "true" for r in children) == states.count(
        optuna.trial.TrialState.PRUNED
    )
    assert parent.info.status == "FINISHED"
    assert float(parent.data.params["best.regularizer.strength"]) == study.best_params["regularizer.strength"]
    assert parent.data.metrics["best/value"] == pytest.approx(study.best_value)
    assert (output_dir / "optuna.db").exists()

    again = search.main(["--search", str(spec), "--n-trials", "1", f"paths.output_dir={output_dir}"])
    assert len(again.trials) == 9  # the stored study goes on

    runs_before = len(all_runs(store_uri(output_dir)))
    with pytest.raises(SystemExit) as refused:  # other overrides: not the same study's trials
        search.main(["--search", str(spec), "--n-trials", "1", "data=wine", f"paths.output_dir={output_dir}"])
    assert refused.value.code == 2
    assert "'test-study'" in capsys.readouterr().err
    assert len(all_runs(store_uri(output_dir))) == runs_before
    wine = search.main(
        [
            "--search",
            str(spec),
            "--n-trials",
            "1",
            "--study",
            "wine",
            "data=wine",
            f"paths.output_dir={output_dir}",
        ]
    )
    assert wine.study_name == "wine" and len(wine.trials) == 1


def test_unknown_space_type_names_the_key():
    class Trial:
        pass

    with pytest.raises(ValueError, match=r"search\.space\.dropout\.type='uniform'"):
        search.suggest(Trial(), {"dropout": {"type": "uniform"}})


@pytest.mark.parametrize(
    "direction,values,reported",
    [
        ("minimize", [0.9, 0.5, 0.7, 0.4], [0.9, 0.5, 0.5, 0.4]),
        ("maximize", [0.1, 0.6, 0.3, 0.8], [0.1, 0.6, 0.6, 0.8]),
    ],
)
def test_the_pruner_sees_the_best_value_so_far(direction, values, reported):
    """What is reported is what the objective will be: the best epoch so far."""
    import types

    import optuna
    import torch

    study = optuna.create_study(direction=direction)
    trial = study.ask()
    callback = search.PruneOnPlateau(trial, "val/loss", direction)
    for epoch, value in enumerate(values):
        trainer = types.SimpleNamespace(
            callback_metrics={"val/loss": torch.tensor(value)},
            sanity_checking=False,
            current_epoch=epoch,
            should_stop=False,
        )
        callback.on_validation_end(trainer, None)
    (running,) = study.trials
    assert [running.intermediate_values[e] for e in range(4)] == pytest.approx(reported)
