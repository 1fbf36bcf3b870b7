"""A sweep's job configs composed once per set of config-group choices (reglab's launchers and
:func:`reglab.config.compose_many` compose through it).

Hydra composes every job of a sweep from scratch, twice: its sweeper checks that each job
composes (``validate_batch_is_legal``), then the launcher composes it again to run it. A
composition walks the defaults tree and merges every config file, ~0.1-0.2 s for reglab's
tree, which is more than a small job's training costs in a stacked sweep.

Most jobs of a sweep differ only in values (``seed=3``, ``regularizer.strength=1e-3``):
Hydra composes their defaults list identically and then sets those values on the result
(``key=value`` overrides are applied after composition). :class:`ComposeOnce` wraps Hydra's
config loader and keeps, per *signature* of a job's overrides, one config Hydra composed;
a later job with the same signature gets a copy of it with its own values set by Hydra's
own override code, and its own ``hydra.overrides`` and ``hydra.job.override_dirname``:
the config Hydra would compose for it.

The signature keeps verbatim every override whose effect is not "set this key to this
value": config-group choices, additions (``+``, ``++``), deletions (``~``), dict values,
packages, ``hydra.*`` keys, and any value override whose key is nested in or contains
another override's key. Only the values of plain ``key=value`` overrides (keys distinct
and unrelated) vary between jobs that share a composition, and setting such a key again
replaces what the earlier job set, so the order of application does not matter.
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

_OWN = ("loader", "_composed", "_repositories")


class ComposeOnce:
    """A Hydra config loader whose :meth:`load_sweep_config` composes once per signature
    (see the module docstring); every other call goes to the wrapped loader."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self._composed: dict[tuple, DictConfig] = {}
        self._repositories: dict[tuple, Any] = {}
        self.compositions = 0  # how many jobs Hydra composed from scratch

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:  # not set yet: being unpickled
            raise AttributeError(name)
        return getattr(self.loader, name)

    def _repository(self, config_name: str | None, parsed: list) -> Any:
        """The config repository Hydra composes a job from: its search path, extended by
        the job's ``hydra.searchpath`` override if any (one per distinct override)."""
        searchpath = [o.input_line for o in parsed if o.get_key_element() == "hydra.searchpath"]
        key = (config_name, *searchpath)
        if key not in self._repositories:
            _, repo = self.loader._parse_overrides_and_create_caching_repo(config_name, searchpath)
            self._repositories[key] = repo
        return self._repositories[key]

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job's config, as ``loader.load_sweep_config`` composes it."""
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import ConfigCompositionException
        from omegaconf.errors import OmegaConfBaseException

        hydra_overrides = list(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        config_name = master_config.hydra.job.config_name
        parsed = OverridesParser.create().parse_overrides(hydra_overrides + list(sweep_overrides))
        repo = self._repository(config_name, parsed)
        pairs = list(zip(parsed, _variable(parsed, repo), strict=True))
        signature = (config_name, *(("=", o.key_or_group) if v else o.input_line for o, v in pairs))
        composed = self._composed.get(signature)
        if composed is None:
            self.compositions += 1
            cfg = self.loader.load_sweep_config(master_config, list(sweep_overrides))
            self._composed[signature] = copy.deepcopy(cfg)
            return cfg
        cfg = copy.deepcopy(composed)
        try:
            self.loader._apply_overrides_to_config([o for o, v in pairs if v], cfg)
        except OmegaConfBaseException as error:
            raise ConfigCompositionException(str(error)) from error
        _describe(cfg, parsed)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def _variable(parsed: list, repo: Any) -> list[bool]:
    """Per override: whether it only sets a value that another job may set differently."""
    groups = [repo.group_exists(o.key_or_group) for o in parsed]
    values = [o.key_or_group for o, group in zip(parsed, groups, strict=True) if not group]
    return [
        not (group or o.is_delete() or o.is_add() or o.is_force_add() or o.is_sweep_override())
        and o.package is None
        and not o.is_hydra_override()
        and not isinstance(o.value(), dict)
        and _unrelated(o.key_or_group, values)
        for o, group in zip(parsed, groups, strict=True)
    ]


def _unrelated(key: str, keys: list[str]) -> bool:
    """``key`` occurs once among ``keys`` and neither contains nor is nested in another."""
    return keys.count(key) == 1 and not any(
        k != key and (k.startswith(key + ".") or key.startswith(k + ".")) for k in keys
    )


def _describe(cfg: DictConfig, parsed: list) -> None:
    """``hydra.overrides`` and ``hydra.job.override_dirname`` for this job's overrides, as
    Hydra's composition sets them."""
    from hydra._internal.config_loader_impl import get_overrides_dirname

    app = [o for o in parsed if not o.is_hydra_override()]
    dirname = cfg.hydra.job.config.override_dirname
    with open_dict(cfg.hydra):
        cfg.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app,
            kv_sep=dirname.kv_sep,
            item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys,
        )
