"""MLflow tracking: the store and experiment (:mod:`.store`), one run per job (:mod:`.run`)
and the Lightning logger writing epoch metrics into it (:mod:`.epoch_logger`).

MLflow is imported lazily: a process that never touches the store does not pay for it.
"""

from reglab.tracking.run import TrackedRun, config_yaml, flatten_config, git_commit, portable_paths
from reglab.tracking.store import (
    connection_uri,
    disable_telemetry,
    ensure_experiment,
    experiment_of,
    resolve_tracking_uri,
    sqlite_path,
)

__all__ = [
    "TrackedRun",
    "config_yaml",
    "connection_uri",
    "disable_telemetry",
    "ensure_experiment",
    "experiment_of",
    "flatten_config",
    "git_commit",
    "portable_paths",
    "resolve_tracking_uri",
    "sqlite_path",
]
