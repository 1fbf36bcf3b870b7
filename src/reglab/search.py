"""Hyperparameter search with Optuna over reglab runs.

A thin driver: each trial samples values from ``conf/search/<name>.yaml``'s ``space``,
calls :func:`reglab.run` with them as overrides (the same code path as the CLI) and
reports the monitored validation metric to Optuna after every epoch, so the pruner can
stop unpromising trials (they stop early, are tagged ``reglab.pruned``, and count as
pruned in the study). TPE samples; the study lives in SQLite next to the MLflow store,
so re-running the same command continues it. All trials are children of one MLflow
parent run, which receives the best params and value at the end.

    python scripts/search.py [--search default] [--n-trials 20] [overrides ...]

(hydra-optuna-sweeper pins optuna < 3, hence a driver rather than a sweeper plugin.)
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

import reglab
from reglab import tracking
from reglab.config import compose, find_config_dir
from reglab.startup import import_run_modules

log = logging.getLogger("reglab")


class PruneOnPlateau(Callback):
    """Report ``metric`` to the trial after each validation; stop the fit when the
    pruner says so (the run ends normally and is tagged as pruned)."""

    def __init__(self, trial, metric: str) -> None:
        self.trial, self.metric, self.pruned = trial, metric, False

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


def suggest(trial, space: dict[str, dict[str, Any]]) -> list[str]:
    """One Hydra override per searched key, sampled by the trial."""
    overrides = []
    for key, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            value = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "int":
            value = trial.suggest_int(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            value = trial.suggest_categorical(key, list(spec["choices"]))
        else:
            raise ValueError(f"search.space.{key}.type={kind!r} is not allowed: float, int or categorical")
        overrides.append(f"{key}={value}")
    return overrides


def load_search(name: str):
    """``conf/search/<name>.yaml``, or ``name`` itself when it is a path to a yaml file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else find_config_dir() / "search" / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SystemExit(f"reglab: error: search={name!r} not found; available: {available}")
    return OmegaConf.load(path)


def main(argv: list[str] | None = None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    gc.disable()  # back on in import_run_modules: see reglab.startup
    try:
        import optuna

        spec = load_search(args.search)
        n_trials = args.n_trials or spec.n_trials
        fixed = [*spec.overrides, *args.overrides]
        cfg = compose(fixed)
    except BaseException:
        gc.enable()
        raise
    import_run_modules(with_mlflow=bool(cfg.logger.enabled))
    output_dir = Path(cfg.paths.output_dir).resolve()
    storage = spec.storage or f"sqlite:///{output_dir / 'optuna.db'}"
    output_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=spec.study_name, storage=storage, load_if_exists=True, direction=spec.direction,
        sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed),
        pruner=optuna.pruners.MedianPruner(**spec.pruner),
    )
    parent = _start_parent(cfg, spec, fixed, n_trials) if cfg.logger.enabled else None
    parent_overrides = [f"logger.parent_run_id={parent.run_id}"] if parent else []

    def objective(trial) -> float:
        pruning = PruneOnPlateau(trial, spec.metric)
        sampled = suggest(trial, OmegaConf.to_container(spec.space))
        log.info("trial %d (%d this session): %s", trial.number, n_trials, " ".join(sampled))
        result = reglab.run([*fixed, *sampled, *parent_overrides], callbacks=[pruning])
        if pruning.pruned:
            if result.run_id:
                tracking.TrackedRun(parent.uri, parent.experiment_id).client.set_tag(
                    result.run_id, "reglab.pruned", "true")
            raise optuna.TrialPruned()
        return best_value(result.history.get(spec.metric, []), spec.direction)

    try:
        study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    except BaseException as error:
        if parent:
            parent.fail(error)
        raise
    return _finish(study, parent)


def best_value(history: list[float], direction: str) -> float:
    """The best epoch's value of the monitored metric (NaN if it was never logged)."""
    if not history:
        return math.nan
    return min(history) if direction == "minimize" else max(history)


def _start_parent(cfg, spec, fixed, n_trials) -> tracking.TrackedRun:
    uri = tracking.resolve_tracking_uri(cfg.logger.tracking_uri, cfg.paths.output_dir)
    experiment_id = tracking.ensure_experiment(uri, cfg.logger.experiment_name, cfg.logger.artifact_location)
    parent = tracking.TrackedRun(uri, experiment_id)
    parent.start(f"search-{spec.study_name}", {"reglab.kind": "search", "reglab.study": spec.study_name})
    parent.log_params({"search.n_trials": str(n_trials), "search.overrides": " ".join(fixed),
                       "search.metric": spec.metric, "search.direction": spec.direction})
    parent.log_text(OmegaConf.to_yaml(spec), "search.yaml")
    return parent


def _finish(study, parent):
    import optuna

    states = [t.state for t in study.trials]
    pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    print(f"study {study.study_name}: {len(states)} trials, {complete} complete, {pruned} pruned")
    if complete:
        print(f"best value {study.best_value:.5g} with {study.best_params}")
    if parent:
        if complete:
            parent.log_params({f"best.{k}": str(v) for k, v in study.best_params.items()})
            parent.log_metrics({"best/value": study.best_value, "search/trials": len(states),
                                "search/pruned": pruned, "search/complete": complete})
        parent.finish()
    return study


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Optuna search over reglab runs (see reglab.search).")
    parser.add_argument("--search", default="default",
                        help="a file in conf/search/ (without .yaml), or a path to a yaml file")
    parser.add_argument("--n-trials", type=int, default=None, help="trials to run now (default: the file's)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every trial")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
