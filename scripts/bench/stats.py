"""Medians and their spread."""

from __future__ import annotations

import statistics


def median(values):
    """Median of the values that are not None (None if there are none)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values) -> list[float]:
    """Interquartile range (min-max below 4 values): how much a median can be trusted."""
    values = sorted(v for v in values if v is not None)
    if len(values) < 4:
        return [values[0], values[-1]] if values else []
    quartiles = statistics.quantiles(values, n=4)
    return [quartiles[0], quartiles[2]]


def ratios(numerators, denominators) -> list[float]:
    """Pairwise ratios of two equally long series (interleaved measurements)."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]
