"""One training job: check -> build -> track -> fit -> test -> log.

The CLI (``python train.py``) and the Python API (:func:`run`) both end in
:func:`train`, so a notebook gets exactly what the command line gets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from reglab.build import Components, build_components, check_accelerator
from reglab.config import compose_with_choices
from reglab.timing import span, timed
from reglab.tracking.redaction import RedactingFilter

log = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as Hydra's train.log


@dataclass
class Result:
    """What a job returns: final metrics, the MLflow run id and the trained model.

    ``model`` holds the weights of the best validation epoch (the ones tested); ``data``
    is the data module, whose ``tensors`` hold the exact (standardized) splits used.
    """

    metrics: dict[str, float]
    run_id: str | None
    model: torch.nn.Module
    data: object
    config: DictConfig
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    tracking_uri: str | None = None


# Config keys that say where a job writes, how it is tracked or how a study reads it, not what
# it computes: left out of its identity (config_hash) and of its run name.
NOT_IDENTITY = ("paths", "logger", "resume", "study")
HEADLINE_METRICS = ("test/acc", "test/r2", "test/mse")  # classification: acc; regression: r2, mse


def run_name(overrides: Sequence[str], groups: Collection[str] = ()) -> str:
    """The MLflow run name: the overrides that identify the run, config-group choices
    (``groups``, e.g. ``regularizer``) first, each path-valued one by its file name:
    ``["data.path=/d/f.csv", "dropout=0.3", "regularizer=l1"]`` ->
    ``"regularizer=l1,data.path=f.csv,dropout=0.3"``. Where the job writes or is tracked
    (``paths.*``, ``logger.*``, ``hydra.*``, ...: :data:`NOT_IDENTITY`) is left out."""
    shown = []
    for override in overrides:
        key, equals, value = override.partition("=")
        bare = key.lstrip("+~")
        if bare.split(".")[0].split("/")[0] in (*NOT_IDENTITY, "hydra"):
            continue
        if bare not in groups and "/" in value and not value.startswith(("[", "{")):
            value = value.strip("'\"").rstrip("/").rsplit("/", 1)[-1]
        shown.append((bare not in groups, f"{key}{equals}{value}"))
    return ",".join(text for _, text in sorted(shown, key=lambda item: item[0])) or "default"


def headline(result: Result) -> str:
    """The last words of a single run on the console: the test metrics that matter, the
    tested (best) epoch of those trained, the run folder, the MLflow run and how to see it."""
    from reglab.entry import ui_command

    metrics = result.metrics
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in HEADLINE_METRICS if k in metrics) or "no test metric"
    best, epochs = metrics.get("fit/best_epoch"), metrics.get("fit/epochs")
    if best is not None and epochs is not None:  # fit/best_epoch counts from 0, the epoch lines from 1
        stopped = ", stopped early" if metrics.get("fit/stopped_early") else ""
        shown += f" (best epoch {int(best) + 1} of {int(epochs)} trained{stopped})"
    lines = [f"done: {shown}", f"  run folder: {result.run_dir}"]
    if result.run_id is None:
        lines.append("  MLflow: not tracked (logger.enabled=false)")
    else:
        experiment = result.config.logger.experiment_name
        lines.append(f"  MLflow run: {result.run_id} (experiment {experiment})")
        lines.append(f"  browse: {ui_command(result.tracking_uri)}")
    return "\n".join(lines)


def run(overrides: Sequence[str] = (), callbacks: Sequence = (), verbose: bool = True) -> Result:
    """Train with the shipped config plus ``overrides`` (the CLI's syntax), from Python.

    ``callbacks`` are extra Lightning callbacks (e.g. a search's pruning callback). The run's
    folder is ``<paths.output_dir>/api/<date>/<time>/`` with its ``train.log``, as the CLI's
    runs have; with ``verbose`` the per-epoch progress lines and the :func:`headline` also go
    to stderr (unless logging is already configured to show them).

    >>> result = reglab.run(["regularizer=l1", "trainer.max_epochs=5"])
    >>> result.metrics["test/acc"], result.run_id
    """
    cfg, choices = compose_with_choices(overrides)
    stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    run_dir = Path(cfg.paths.output_dir) / "api" / stamp
    with run_logging(run_dir / "train.log", verbose):
        result = train(cfg, list(overrides), run_dir, choices, callbacks)
        log.info(headline(result))
    return result


@contextlib.contextmanager
def run_logging(log_file: Path, verbose: bool) -> Iterator[None]:
    """reglab's log lines (INFO and up) to ``log_file`` and, with ``verbose``, to stderr when
    no handler of the process would show them, for the duration of one run."""
    logger = logging.getLogger("reglab")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(log_file)]
    shown = any(h.level <= logging.INFO for h in _handlers_of(logger))
    if verbose and not shown:
        handlers.append(logging.StreamHandler())
    level = logger.level
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def _handlers_of(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches (its own and its ancestors')."""
    found, current = [], logger
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None
    return found


def prepare(cfg: DictConfig, callbacks: list | None = None) -> Components:
    """Build what a checked config (:func:`reglab.config.check_job`, once per job) trains:
    data, model, regularizer, optimizer and callbacks (``callbacks``, when its checks built
    them already). With the door, every config error is raised here, before the training stack
    or MLflow is imported or the store is touched."""
    with span("config"):
        check_accelerator(cfg)
    with span("build"):
        return build_components(cfg, callbacks)


@timed("build")
def train(
    cfg: DictConfig,
    overrides: Sequence[str],
    run_dir: Path,
    choices: dict[str, str] | None = None,
    extra_callbacks: Sequence = (),
    components: Components | None = None,
) -> Result:
    """Run one job described by a composed config; see the module docstring.

    ``cfg`` has passed its door (:func:`reglab.config.check_job`). ``choices`` (the option of
    each config group) are logged as ``choice.<group>`` params. ``components`` are those
    :func:`prepare` built from ``cfg`` (built here when absent).
    """
    parts = components if components is not None else prepare(cfg)
    from lightning.pytorch.callbacks import ModelCheckpoint

    from reglab.fit import FitRecord, fit_and_test
    from reglab.module import RegularizedModule

    module = RegularizedModule(
        model=parts.model,
        regularizer=parts.regularizer,
        optimizer=parts.optimizer,
        task=parts.datamodule.task,
        n_outputs=parts.datamodule.n_outputs,
    )
    for callback in parts.callbacks:  # a ModelCheckpoint without a folder: the run's checkpoints/
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / "checkpoints")
    callbacks = [*parts.callbacks, *extra_callbacks]
    tracked = start_tracking(cfg, overrides, choices or {}) if cfg.logger.enabled else None
    try:
        metrics = fit_and_test(cfg, module, parts.datamodule, callbacks, tracked, run_dir)
    except BaseException as error:
        if tracked is not None:
            tracked.fail(error)
        raise
    if tracked is not None:
        with span("logging"):
            tracked.finish()
    return Result(
        metrics=metrics,
        run_id=tracked.run_id if tracked else None,
        model=module.model,
        data=parts.datamodule,
        config=cfg,
        run_dir=run_dir,
        overrides=list(overrides),
        history=FitRecord(run_dir / "fit_record.json").read()["history"],
        tracking_uri=tracked.uri if tracked else None,
    )


def config_hash(cfg: DictConfig) -> str:
    """Identity of what a job computes: the resolved config without where it writes
    (``paths``), how it is tracked (``logger``) or how a study reads it (``study``). Equal
    hashes, equal results."""
    return _hash_of(OmegaConf.to_container(cfg, resolve=True))


def _hash_of(resolved: dict) -> str:
    identity = {key: value for key, value in resolved.items() if key not in NOT_IDENTITY}
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_run(
    cfg: DictConfig,
    overrides: Sequence[str],
    choices: dict[str, str],
    tags: dict | None = None,
    commit: str | None = None,
):
    """What the job's MLflow run records besides its metrics, as a
    :class:`~reglab.tracking.batch.FinishedRun`: its name, tags (``tags`` added; the git
    ``commit`` of the project, looked up when not given), params (the flattened resolved
    config and ``choice.<group>``) and ``config.yaml``."""
    from reglab import tracking
    from reglab.tracking.batch import FinishedRun

    tags = {"reglab.overrides": " ".join(overrides) or "(none)", **(tags or {})}
    tags.update({str(k): str(v) for k, v in (cfg.logger.get("tags") or {}).items()})
    if cfg.logger.get("parent_run_id"):
        tags["mlflow.parentRunId"] = str(cfg.logger.parent_run_id)
    for key in ("sweep_id", "sweep_signature"):
        if cfg.logger.get(key):
            tags[f"reglab.{key}"] = str(cfg.logger[key])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tags["reglab.config_hash"] = _hash_of(resolved)
    commit = commit or tracking.git_commit(cfg.paths.root_dir)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    resolved = tracking.portable_paths(resolved, cfg.paths.root_dir)
    params = tracking.flatten_config({k: v for k, v in resolved.items() if k != "paths"})
    params.update({f"choice.{group}": option for group, option in choices.items()})
    texts = {"config.yaml": tracking.config_yaml(resolved)}
    return FinishedRun(run_name(overrides, choices), tags, params, [], texts=texts)


@timed("logging")
def start_tracking(
    cfg: DictConfig, overrides: Sequence[str], choices: dict[str, str], tags: dict | None = None
):
    """The job's MLflow run, started with its tags (``tags`` added), params and config
    (:func:`describe_run`)."""
    from reglab import tracking

    uri, experiment_id = tracking.experiment_of(cfg)
    described = describe_run(cfg, overrides, choices, tags)
    tracked = tracking.TrackedRun(uri, experiment_id)
    tracked.start(described.name, described.tags)
    try:
        tracked.log_params(described.params)
        tracked.log_text(described.texts["config.yaml"], "config.yaml")
    except BaseException as error:
        tracked.fail(error)
        raise
    log.info("MLflow run %s in %s", tracked.run_id, uri)
    return tracked
