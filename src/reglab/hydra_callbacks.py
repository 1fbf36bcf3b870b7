"""Hydra callbacks run in the launching process, before any job starts."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CreateTrackingStore(Callback):
    """Create the MLflow store and experiment once, before the first job.

    Jobs then only open what exists, so a fresh SQLite store is never migrated by
    several jobs at once.
    """

    def _ensure(self, config: DictConfig) -> None:
        if not config.logger.enabled:
            return
        from reglab import tracking

        uri = tracking.resolve_tracking_uri(config.logger.tracking_uri, config.paths.output_dir)
        tracking.ensure_experiment(uri, config.logger.experiment_name, config.logger.artifact_location)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from reglab.cli import exit_on_config_error
        from reglab.config import validate

        with exit_on_config_error():
            validate(config)
        self._ensure(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._ensure(config)
