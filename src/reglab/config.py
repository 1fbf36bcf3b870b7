"""Where the config tree lives, how it is composed outside the CLI, and how it is checked.

Every job's config passes one door, once, before anything is instantiated or logged:
:func:`check_job` (:func:`validate`, then :func:`sync_knobs`). A bad value stops the job with
one line naming the key, the value and what is allowed. :func:`validate` holds the rules that
span several keys and those of constructors that are not reglab's; each of reglab's own
classes checks its arguments in its constructor (:mod:`reglab.checks`). Who opens the door:
composition here (:func:`compose` and its siblings, for ``reglab.run`` and the Python API),
the CLI's job for a single run, and for a sweep its launcher (reglab's check every job
before the first trains: :mod:`reglab.sweeps.checked`) or else each job.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from reglab import checks
from reglab.errors import ConfigError
from reglab.knobs import KNOBS, models_taking
from reglab.timing import span

CONFIG_NAME = "train"
ROOT_ENV = "REGLAB_ROOT"
CONFIG_DIR_ENV = "REGLAB_CONFIG_DIR"
# conf/hydra/launcher/basic.yaml puts reglab's launcher in the place of Hydra's own ``basic``;
# Hydra then warns that a config file named like one of its structured configs is validated
# against it (a deprecated match, harmless here: both only set ``_target_``).
SHADOWED_BASIC = r"\s*'hydra/launcher/basic' is validated against ConfigStore schema"


def find_config_dir() -> Path:
    """``$REGLAB_CONFIG_DIR``, else the checkout's ``conf/``, else ``./conf``."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).resolve()
    candidates = (Path(__file__).resolve().parents[2] / "conf", Path.cwd() / "conf")
    for candidate in candidates:
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"no {CONFIG_NAME}.yaml found in {[str(c) for c in candidates]}; "
        f"run from the reglab checkout or set {CONFIG_DIR_ENV}"
    )


def prepare_environment(config_dir: Path) -> None:
    """Make ``paths.root_dir`` default to the folder holding ``conf/``."""
    os.environ.setdefault(ROOT_ENV, str(config_dir.parent))


@contextlib.contextmanager
def composing() -> Iterator[None]:
    """Around a composition of reglab's config tree: Hydra's warning about
    :data:`SHADOWED_BASIC` silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SHADOWED_BASIC, category=UserWarning)
        yield


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The job config for ``overrides``, composed as ``python train.py`` would, through the
    door (:func:`check_job`)."""
    return compose_with_choices(overrides)[0]


def compose_with_choices(overrides: Sequence[str] = ()) -> tuple[DictConfig, dict[str, str]]:
    """The checked job config and the option chosen in each config group
    (``{"data": "digits", ...}``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = find_config_dir()
    prepare_environment(config_dir)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"), composing():
        cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    return _task_and_choices(cfg)


def compose_many(jobs: Sequence[Sequence[str]]) -> list[tuple[DictConfig, dict[str, str]]]:
    """:func:`compose_with_choices` of each job (a list of overrides), composing once per set
    of config-group choices and setting each job's values on a copy
    (:class:`reglab.compose_once.ComposeOnce`): the same configs at a fraction of the cost
    when jobs differ in values (``seed=3``, ``regularizer.strength=1e-3``)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from reglab.compose_once import ComposeOnce

    config_dir = find_config_dir()
    prepare_environment(config_dir)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"), composing():
        loader = ComposeOnce(GlobalHydra.instance().config_loader())
        master = loader.load_configuration(CONFIG_NAME, [], RunMode.MULTIRUN)
        return [_task_and_choices(loader.load_sweep_config(master, list(job))) for job in jobs]


def _task_and_choices(cfg: DictConfig) -> tuple[DictConfig, dict[str, str]]:
    """A composed config without its ``hydra`` node, through the door (:func:`check_job`),
    and the option chosen per group."""
    choices = group_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return check_job(cfg), choices


def group_choices(runtime_choices: Any) -> dict[str, str]:
    """Hydra's ``runtime.choices`` without its own groups (``hydra/...``)."""
    return {
        str(group): str(option)
        for group, option in OmegaConf.to_container(runtime_choices).items()
        if not str(group).startswith("hydra") and option is not None
    }


# Keys whose constructor is not reglab's (torch optimizers, Lightning's Trainer and
# EarlyStopping raise without naming the key): checked here, before anything is built.
# Everything reglab instantiates checks its own arguments (reglab.checks).
FOREIGN_RULES: list[tuple[str, Callable[[str, Any], Any]]] = [
    ("seed", checks.integer),
    ("optimizer.lr", lambda k, v: checks.number(k, v, low=0, low_open=True)),
    ("optimizer.weight_decay", lambda k, v: checks.number(k, v, low=0)),
    ("optimizer.momentum", lambda k, v: checks.number(k, v, low=0, high=1, high_open=True)),
    ("trainer.max_epochs", lambda k, v: checks.integer(k, v, low=1)),
    ("callbacks.early_stopping.patience", lambda k, v: checks.integer(k, v, low=0)),
    ("callbacks.early_stopping.min_delta", lambda k, v: checks.number(k, v, low=0)),
    ("callbacks.early_stopping.mode", lambda k, v: checks.choice(k, v, ("min", "max"))),
]

_ABSENT = object()


def _select(cfg: DictConfig, key: str) -> Any:
    """The resolved value at ``key`` (a plain container for a node); ``_ABSENT`` if missing."""
    try:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    except Exception as error:  # an interpolation that cannot resolve
        reason = str(error).strip().splitlines()[0]
        raise ConfigError(f"{key} cannot be resolved: {reason}") from None


def non_finite_numbers(container: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(key, value)`` of every NaN or infinite number in a resolved config."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        name = f"{prefix}{key}" if isinstance(container, dict) else f"{prefix[:-1]}[{key}]"
        if isinstance(value, (dict, list)):
            yield from non_finite_numbers(value, f"{name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            yield name, value


def check_knobs(cfg: DictConfig) -> None:
    """A top-level knob (:mod:`reglab.knobs`) in its range, and, set away from its neutral
    value, reaching the model: refused when the model has no such key (``model=linear
    dropout=0.5``)."""
    model = cfg.get("model") or {}
    for knob in KNOBS.values():
        value = _select(cfg, knob.name)
        if value is _ABSENT or value is None:
            continue
        knob.check(knob.name, value)
        if knob.name not in model and value != knob.neutral:
            target = model.get("_target_", "this model")
            takers = ", ".join(models_taking(knob.name, find_config_dir()))
            raise ConfigError(
                f"{knob.name}={value!r} is not allowed with {target}: it has no {knob.name} "
                f"(allowed here: {knob.name}={str(knob.neutral).lower()}; models with {knob.name}: {takers})"
            )


def sync_knobs(cfg: DictConfig, values: dict[str, Any] | None = None) -> None:
    """Make each top-level knob the value the model uses (``model.dropout=0.3`` set
    directly -> ``dropout`` 0.3), so that what is logged and reported is what was used; also
    in ``values``, the config's resolved values (:func:`validate`'s), when given."""
    model = cfg.get("model") or {}
    with open_dict(cfg):
        for knob in KNOBS:
            if knob in model and knob in cfg:
                used = _select(cfg, f"model.{knob}")
                if used != cfg[knob]:
                    cfg[knob] = used
                    cfg.model[knob] = used
                    if values is not None:
                        values[knob] = used


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Raise :class:`ConfigError` for a non-finite number anywhere, a key of a foreign
    constructor outside its range, or a rule spanning several keys; and
    :class:`MissingDataError` for a ``data.path`` that is not a file. Imports nothing heavy: a
    bad value costs no training stack. The values of reglab's own classes are checked by their
    constructors. Jobs call it through their door, :func:`check_job`. Returns the values it
    checked: the config resolved into plain containers, without Hydra's node."""
    resolved = {str(key): _select(cfg, str(key)) for key in cfg if key != "hydra"}
    for key, value in non_finite_numbers(resolved):
        raise checks.refuse(key, value, "a finite number")
    for key, check in FOREIGN_RULES:
        value = _select(cfg, key)
        if value is not _ABSENT and value is not None:
            check(key, value)
    check_knobs(cfg)
    fractions = (OmegaConf.select(cfg, "data.val_fraction", default=0) or 0) + (
        OmegaConf.select(cfg, "data.test_fraction", default=0) or 0
    )
    if fractions >= 1:
        raise ConfigError(f"data.val_fraction + data.test_fraction = {fractions} is not allowed: must be < 1")
    table = OmegaConf.select(cfg, "data.path", default=None)
    if table is not None:
        checks.existing_file("data.path", table)
    return resolved


def check_job(cfg: DictConfig) -> DictConfig:
    """The door of a job's config, passed once before anything is built: :func:`validate`,
    then :func:`sync_knobs`; returns ``cfg``. ``cfg`` may still hold Hydra's node: a
    launcher checks the config it hands to Hydra's ``run_job``, whose copy without that node
    is what the job gets."""
    checked_values(cfg)
    return cfg


def checked_values(cfg: DictConfig) -> dict[str, Any]:
    """:func:`check_job`, returning the config's values as checked: resolved into plain
    containers, without Hydra's node, the knobs synced (what the stacked launcher plans
    stacks with)."""
    with span("config"):
        values = validate(cfg)
        sync_knobs(cfg, values)
    return values
