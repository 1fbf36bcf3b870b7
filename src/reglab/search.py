"""Hyperparameter search with Optuna over reglab runs.

A thin driver: each trial samples values from ``conf/search/<name>.yaml``'s ``space``,
calls :func:`reglab.run` with them as overrides (the same code path as the CLI) and
reports the best value so far of the monitored validation metric to Optuna after every
epoch, so the pruner can stop unpromising trials (they stop early, are tagged
``reglab.pruned``, and count as pruned in the study). TPE samples; the study lives in
SQLite next to the MLflow store, so re-running the same command continues it (only with
the same overrides and space: another setup needs its own ``--study``). All trials are
children of one MLflow parent run, which receives the best params and value at the end.

    python scripts/search.py [--search default] [--n-trials 20] [--study NAME] [overrides ...]

(hydra-optuna-sweeper pins optuna < 3, hence a driver rather than a sweeper plugin.)
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

import reglab
from reglab import checks, tracking
from reglab.config import compose, find_config_dir
from reglab.entry import command, import_run_modules
from reglab.pipeline import LOG_FORMAT
from reglab.tracking.redaction import RedactingFilter

log = logging.getLogger("reglab")


class PruneOnPlateau(Callback):
    """Report the best ``metric`` so far to the trial after each validation; stop the fit
    when the pruner says so (the run ends normally and is tagged as pruned).

    The best-so-far value is what the trial's objective will be (:func:`best_value`), so
    the pruner compares like with like, and one noisy epoch does not prune a trial.
    """

    def __init__(self, trial, metric: str, direction: str = "minimize") -> None:
        self.trial, self.metric, self.pruned = trial, metric, False
        self.better = min if direction == "minimize" else max
        self.best: float | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        self.best = value if self.best is None else self.better(self.best, value)
        self.trial.report(self.best, step=trainer.current_epoch)
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
            raise checks.refuse(f"search.space.{key}.type", kind, "float, int or categorical")
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
    if not logging.getLogger().handlers:  # progress on the console: trial and epoch lines
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
        logging.getLogger().handlers[0].addFilter(RedactingFilter())
    with command("reglab-search"):
        return _search(args)


def _search(args: argparse.Namespace):
    import optuna

    spec = load_search(args.search)
    n_trials = args.n_trials or spec.n_trials
    fixed = [*spec.overrides, *args.overrides]
    cfg = compose(fixed)
    import_run_modules(with_mlflow=bool(cfg.logger.enabled))
    output_dir = Path(cfg.paths.output_dir).resolve()
    storage = spec.storage or f"sqlite:///{output_dir / 'optuna.db'}"
    output_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=args.study or spec.study_name,
        storage=storage,
        load_if_exists=True,
        direction=spec.direction,
        sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed),
        pruner=optuna.pruners.MedianPruner(**spec.pruner),
    )
    keep_one_setup(study, fixed, OmegaConf.to_container(spec.space), storage)
    parent = _start_parent(cfg, spec, study.study_name, fixed, n_trials) if cfg.logger.enabled else None
    parent_overrides = [f"logger.parent_run_id={parent.run_id}"] if parent else []

    def objective(trial) -> float:
        pruning = PruneOnPlateau(trial, spec.metric, spec.direction)
        sampled = suggest(trial, OmegaConf.to_container(spec.space))
        log.info("trial %d (%d this session): %s", trial.number, n_trials, " ".join(sampled))
        result = reglab.run([*fixed, *sampled, *parent_overrides], callbacks=[pruning])
        if pruning.pruned:
            if result.run_id:
                tracking.TrackedRun(parent.uri, parent.experiment_id).client.set_tag(
                    result.run_id, "reglab.pruned", "true"
                )
            raise optuna.TrialPruned()
        return best_value(result.history.get(spec.metric, []), spec.direction)

    try:
        study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    except BaseException as error:
        if parent:
            parent.fail(error)
        raise
    return _finish(study, parent)


def keep_one_setup(study, fixed: list[str], space: dict, storage: str) -> None:
    """Record the fixed overrides and the search space on a new study; refuse to continue
    a stored study with different ones (their trials would not be comparable)."""
    setup = {"overrides": list(fixed), "space": space}
    stored = study.user_attrs.get("reglab.setup")
    if stored is None:
        study.set_user_attr("reglab.setup", setup)
    elif stored != setup:
        print(
            f"reglab: error: study {study.study_name!r} in {storage} was run with overrides "
            f"{stored['overrides']} and space {sorted(stored['space'])}, not {setup['overrides']} and "
            f"{sorted(setup['space'])}; give a different setup its own study: --study NAME",
            file=sys.stderr,
        )
        raise SystemExit(2)


def best_value(history: list[float], direction: str) -> float:
    """The best epoch's value of the monitored metric (NaN if it was never logged)."""
    if not history:
        return math.nan
    return min(history) if direction == "minimize" else max(history)


def _start_parent(cfg, spec, study_name: str, fixed, n_trials) -> tracking.TrackedRun:
    parent = tracking.TrackedRun(*tracking.experiment_of(cfg))
    parent.start(f"search-{study_name}", {"reglab.kind": "search", "reglab.study": study_name})
    parent.log_params(
        {
            "search.n_trials": str(n_trials),
            "search.overrides": " ".join(fixed),
            "search.metric": spec.metric,
            "search.direction": spec.direction,
        }
    )
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
            parent.log_metrics(
                {
                    "best/value": study.best_value,
                    "search/trials": len(states),
                    "search/pruned": pruned,
                    "search/complete": complete,
                }
            )
        parent.finish()
    return study


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Optuna search over reglab runs (see reglab.search).")
    parser.add_argument(
        "--search", default="default", help="a file in conf/search/ (without .yaml), or a path to a yaml file"
    )
    parser.add_argument("--n-trials", type=int, default=None, help="trials to run now (default: the file's)")
    parser.add_argument(
        "--study",
        default=None,
        help="study name (default: the file's study_name); a stored study continues only "
        "with the overrides and space it started with",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every trial")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
