"""Where the config tree lives, how it is composed outside the CLI, and how it is checked.

:func:`validate` runs before anything is instantiated or logged: a bad value stops the
job with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

CONFIG_NAME = "train"
ROOT_ENV = "REGLAB_ROOT"
CONFIG_DIR_ENV = "REGLAB_CONFIG_DIR"


class ConfigError(ValueError):
    """A config value outside what is allowed; the message names key, value and range."""


class DataError(ConfigError):
    """A data source that cannot be used as configured (bad column, missing values, ...).

    A :class:`ConfigError`: the CLI prints its one-line message and exits with status 2,
    before anything is trained or recorded. (Defined here, importable from
    :mod:`reglab.data`, so that reporting it does not import the training stack.)
    """


class MissingDataError(FileNotFoundError):
    """A data file or folder is not where the config points; the message names the path
    looked at and how to get the data."""


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


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The job config for ``overrides``, composed as ``python train.py`` would."""
    return compose_with_choices(overrides)[0]


def compose_with_choices(overrides: Sequence[str] = ()) -> tuple[DictConfig, dict[str, str]]:
    """The job config and the option chosen in each config group (``{"data": "digits", ...}``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = find_config_dir()
    prepare_environment(config_dir)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    choices = group_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def group_choices(runtime_choices: Any) -> dict[str, str]:
    """Hydra's ``runtime.choices`` without its own groups (``hydra/...``)."""
    return {
        str(group): str(option)
        for group, option in OmegaConf.to_container(runtime_choices).items()
        if not str(group).startswith("hydra") and option is not None
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_sizes(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(_is_int(v) and v >= 1 for v in value)
    )


Rule = tuple[str, Callable[[Any], bool], str]

RULES: list[Rule] = [
    ("seed", _is_int, "an integer"),
    ("dropout", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("batchnorm", lambda v: isinstance(v, bool), "true or false"),
    ("model.dropout", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("model.hidden", _positive_sizes, "a non-empty list of positive integers, e.g. [256,256]"),
    ("regularizer.strength", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("regularizer.l1_ratio", lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("regularizer.mode", lambda v: v in ("penalty", "proximal"), "penalty or proximal"),
    ("regularizer.max_norm", lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("optimizer.lr", lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("optimizer.momentum", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("trainer.max_epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("data.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1, or null for the whole split"),
    ("data.eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1, or null for the whole split"),
    ("data.val_fraction", lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    ("data.test_fraction", lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    ("data.repeat", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("data.task", lambda v: v in ("auto", "classification", "regression"),
     "auto, classification or regression"),
    ("data.impute", lambda v: v in ("mean", "median"), "null, mean or median"),
    ("data.sigma", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("data.n_features", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("data.n_train", lambda v: _is_int(v) and v >= 1, "null or an integer >= 1"),
    ("data.n_val", lambda v: _is_int(v) and v >= 0, "null or an integer >= 0"),
    ("data.n_test", lambda v: _is_int(v) and v >= 1, "null or an integer >= 1"),
    ("model.channels", _positive_sizes, "a non-empty list of positive integers, e.g. [32,64]"),
    ("model.kernel_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("model.dims", lambda v: v in (1, 2), "1 or 2"),
    ("callbacks.early_stopping.patience", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("callbacks.early_stopping.min_delta", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
]

_ABSENT = object()


def existing_table_file(path: str | Path) -> Path:
    """``data.path`` as a ``Path``, or :class:`MissingDataError` naming where it looked."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise MissingDataError(f"data.path={str(path)!r}: {path.resolve()} {what}")
    return path


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first value outside its allowed range, and
    :class:`MissingDataError` for a ``data.path`` that is not a file (before anything
    heavy is imported)."""
    for key, is_allowed, allowed in RULES:
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        except Exception as error:  # an interpolation that cannot resolve
            raise ConfigError(f"{key} cannot be resolved: {error}") from None
        if value is _ABSENT or value is None:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        if not is_allowed(value):
            raise ConfigError(f"{key}={value!r} is not allowed: must be {allowed}")
    fractions = OmegaConf.select(cfg, "data.val_fraction", default=0) + OmegaConf.select(
        cfg, "data.test_fraction", default=0
    )
    if fractions >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {fractions} is not allowed: must be < 1"
        )
    table = OmegaConf.select(cfg, "data.path", default=None)
    if table is not None:
        existing_table_file(table)
    activation = OmegaConf.select(cfg, "model.activation", default=None)
    if activation is not None:
        from reglab.models import ACTIVATIONS

        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation={activation!r} is not allowed: must be one of {sorted(ACTIVATIONS)}"
            )
