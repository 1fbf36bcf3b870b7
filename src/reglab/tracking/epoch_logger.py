"""A Lightning logger that writes epoch metrics into an existing MLflow run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from reglab.timing import timed
from reglab.tracking.run import TrackedRun


class EpochMetricsLogger(Logger):
    """Lightning logger writing epoch metrics into an existing :class:`TrackedRun`.

    The MLflow step is the epoch. Metrics are buffered and written in one batch at most
    every ``flush_every_s`` seconds and at the end, so the store is not hit per epoch.
    """

    def __init__(self, run: TrackedRun, flush_every_s: float = 2.0) -> None:
        super().__init__()
        self.run = run
        self.flush_every_s = flush_every_s
        self._pending: list[tuple[str, float, int]] = []
        self._last_flush = time.monotonic()

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self.run.run_id or ""

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Params come from the resolved config (see :func:`flatten_config`), not from here."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = dict(metrics)
        epoch = int(values.pop("epoch", step or 0))  # Lightning adds "epoch" to what it logs
        self._pending.extend((key, float(value), epoch) for key, value in values.items())
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    @timed("logging")
    def flush(self) -> None:
        if self._pending:
            self.run.log_metric_rows(self._pending)
        self._pending = []
        self._last_flush = time.monotonic()

    @rank_zero_only
    def save(self) -> None:
        pass

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.flush()
