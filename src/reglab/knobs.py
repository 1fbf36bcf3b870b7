"""The ablation knobs, defined once: ``dropout`` and ``batchnorm``.

Each knob is a top-level key of ``conf/train.yaml`` that a model's config takes by
interpolation (``model.dropout: ${dropout}``). Here lives, for each knob, its range (what a
model's constructor and the config's door both check), its neutral value (the one a model
without that key behaves as) and the models that take it: those whose ``conf/model/*.yaml``
sets the key, read from the config tree rather than listed by hand.

Imports nothing heavy: the door (:mod:`reglab.config`) checks a knob before torch is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reglab import checks


@dataclass(frozen=True)
class Knob:
    """A knob's ``name``, its ``neutral`` value and the check of its range, ``check(key,
    value) -> value`` (raising :class:`reglab.errors.ConfigError` naming ``key``)."""

    name: str
    neutral: Any
    check: Callable[[str, Any], Any]


def _probability(key: str, value: Any) -> float:
    """A dropout probability: in [0, 1) (1 would drop every unit)."""
    return checks.number(key, value, 0, 1, high_open=True)


DROPOUT = Knob("dropout", 0.0, _probability)
BATCHNORM = Knob("batchnorm", False, checks.flag)
KNOBS = {knob.name: knob for knob in (DROPOUT, BATCHNORM)}


def models_taking(knob: str, config_dir: Path) -> list[str]:
    """The model options of ``config_dir/model/`` whose config sets ``knob``, sorted."""
    from omegaconf import OmegaConf

    return sorted(
        path.stem for path in (config_dir / "model").glob("*.yaml") if knob in (OmegaConf.load(path) or {})
    )
