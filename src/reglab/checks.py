"""Argument checks for constructors: each raises :class:`ConfigError` naming the config
key, the value and what is allowed.

Every class that a config instantiates (regularizers, models, data modules, callbacks)
checks its own arguments with these, in its constructor: that is the one place each rule
lives. This module imports nothing heavy, so a check can run before torch is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from reglab.errors import ConfigError, MissingDataError


def is_number(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def refuse(key: str, value: Any, allowed: str) -> ConfigError:
    """The error for ``key=value``: ``<key>=<value> is not allowed: must be <allowed>``."""
    return ConfigError(f"{key}={value!r} is not allowed: must be {allowed}")


def number(
    key: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allowed: str | None = None,
) -> float:
    """``value`` as a float if it is a finite number in the interval, else :func:`refuse`.

    The bounds are closed unless ``low_open`` / ``high_open``; ``allowed`` replaces the
    generated description of the interval.
    """
    ok = is_number(value) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise refuse(key, value, allowed or _interval(low, high, low_open, high_open))
    return float(value)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a number {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"a number {'<' if high_open else '<='} {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def integer(key: str, value: Any, low: int | None = None, allowed: str | None = None) -> int:
    """``value`` if it is an integer ``>= low``, else :func:`refuse`."""
    if not is_int(value) or (low is not None and value < low):
        raise refuse(key, value, allowed or (f"an integer >= {low}" if low is not None else "an integer"))
    return int(value)


def optional_integer(key: str, value: Any, low: int, none_means: str) -> int | None:
    """``None`` or an integer ``>= low``; ``none_means`` says what ``null`` does."""
    if value is None:
        return None
    return integer(key, value, low, allowed=f"an integer >= {low}, or null for {none_means}")


def choice(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed``, else :func:`refuse` listing them."""
    if value not in allowed:
        raise refuse(key, value, "one of " + ", ".join(map(str, allowed)))
    return value


def flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise refuse(key, value, "true or false")
    return value


def sizes(key: str, value: Any, allow_empty: bool = False) -> list[int]:
    """A list of positive integers (layer widths, channels)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str)
    ok = ok and (allow_empty or len(value) > 0) and all(is_int(v) and v >= 1 for v in value)
    if not ok:
        shown = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        kind = "a list" if allow_empty else "a non-empty list"
        raise refuse(key, shown, f"{kind} of positive integers, e.g. [256,256]")
    return [int(v) for v in value]


def existing_file(key: str, path: str | Path) -> Path:
    """``path`` as a ``Path`` if it is a file, else :class:`MissingDataError` naming where it looked."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise MissingDataError(f"{key}={str(path)!r}: {path.resolve()} {what}")
    return path
