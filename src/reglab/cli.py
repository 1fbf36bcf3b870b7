"""Command line: ``python train.py [overrides]`` / ``reglab-train [overrides]``.

Hydra composes the config from ``conf/``; the job itself is :func:`reglab.pipeline.train`.
A config error ends the process with exit status 2 and one line on stderr.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from reglab.config import CONFIG_NAME, ConfigError, find_config_dir, prepare_environment

CONFIG_ERROR_STATUS = 2


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a :class:`ConfigError` into one line on stderr and exit status 2."""
    try:
        yield
    except ConfigError as error:
        print(f"reglab: error: {error}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_STATUS) from None


def _job(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from reglab.pipeline import train

    hydra_cfg = HydraConfig.get()
    with exit_on_config_error():
        result = train(cfg, list(hydra_cfg.overrides.task), Path(hydra_cfg.runtime.output_dir))
    return result.metrics.get("fit/best_val_loss")


def main() -> None:
    import hydra

    config_dir = find_config_dir()
    prepare_environment(config_dir)
    hydra.main(config_path=str(config_dir), config_name=CONFIG_NAME, version_base="1.3")(_job)()
