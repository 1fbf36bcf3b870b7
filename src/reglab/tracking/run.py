"""One MLflow run per training job: its params (the flattened config), tags, metrics and
text artifacts, closed as FINISHED, FAILED or KILLED."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reglab.tracking.redaction import redact, redact_values
from reglab.tracking.store import connection_uri

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
PARAM_BATCH_LIMIT = 100  # params per log_batch request
METRIC_BATCH_LIMIT = 1000  # metrics per log_batch request


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"hidden": [64]}}`` -> ``{"model.hidden": "[64]"}``; lists as JSON."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = str(value)
    return flat


def portable_paths(config: Any, root: str | Path) -> Any:
    """``config`` with every absolute path inside the project ``root`` written relative to
    it (``/home/me/reglab/outputs`` -> ``outputs``; the root itself -> ``.``), so that what
    a run records does not reveal this machine's directory layout and runs from two
    checkouts compare equal. Paths outside the root are kept as the user gave them."""
    return _portable(config, Path(root).resolve())


def _portable(config: Any, root: Path) -> Any:
    if isinstance(config, Mapping):
        return {key: _portable(value, root) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [_portable(value, root) for value in config]
    if isinstance(config, str) and config.startswith("/"):
        path = Path(config)
        if path == root or root in path.parents:
            return str(path.relative_to(root)) if path != root else "."
    return config


def config_yaml(resolved: Mapping[str, Any]) -> str:
    """What ``OmegaConf.to_yaml`` writes for a resolved config, section by section: a block
    mapping's text is its entries' texts one after the other, so the sections that the
    members of a stack share (all but a few) are written once and reused."""
    parts = []
    for key, value in resolved.items():
        try:
            section = json.dumps({key: value})
        except TypeError:  # not plain JSON data: written as it is
            parts.append(_yaml({key: value}))
        else:
            parts.append(_section_yaml(section))
    return "".join(parts)


@functools.lru_cache(maxsize=1024)
def _section_yaml(section: str) -> str:
    return _yaml(json.loads(section))


def _yaml(data: Mapping[str, Any]) -> str:
    import yaml
    from omegaconf._utils import get_omega_conf_dumper

    return yaml.dump(
        data, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=get_omega_conf_dumper()
    )


def git_commit(directory: str | Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def loggable_params(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``params`` as MLflow keeps them: secrets redacted, values cut at
    :data:`MAX_PARAM_LENGTH` (a warning each); also the keys of those cut."""
    params = redact_values(dict(params))
    truncated = [k for k, v in params.items() if len(v) > MAX_PARAM_LENGTH]
    for key in truncated:
        log.warning(
            "param %s is %d characters; MLflow keeps %d (the full value is in config.yaml)",
            key,
            len(params[key]),
            MAX_PARAM_LENGTH,
        )
    return {k: v[:MAX_PARAM_LENGTH] for k, v in params.items()}, truncated


class TrackedRun:
    """One MLflow run: created on :meth:`start`, closed by :meth:`finish` or :meth:`fail`.

    Every name, tag, param and text artifact passes :func:`~reglab.tracking.redaction.redact`
    on its way to the store: this class is the one door to MLflow."""

    def __init__(self, uri: str, experiment_id: str) -> None:
        from mlflow import MlflowClient

        if redact(uri) != uri:  # MLflow prints run links with the server's URI, password included
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        self.uri = uri
        self.experiment_id = experiment_id
        self.client = MlflowClient(tracking_uri=connection_uri(uri))
        self.run_id: str | None = None

    def start(self, run_name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=redact(run_name), tags=redact_values(dict(tags))
        )
        self.run_id = run.info.run_id
        return self.run_id

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        params, truncated = loggable_params(params)
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), PARAM_BATCH_LIMIT):
            self.client.log_batch(self.run_id, params=items[start : start + PARAM_BATCH_LIMIT])
        if truncated:
            self.client.set_tag(self.run_id, "reglab.truncated_params", ",".join(truncated))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log_metric_rows([(key, float(value), step) for key, value in metrics.items()])

    def log_metric_rows(self, rows: list[tuple[str, float, int]]) -> None:
        """Write ``(key, value, step)`` rows in as few requests as MLflow allows."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, step) for key, value, step in rows]
        for start in range(0, len(items), METRIC_BATCH_LIMIT):
            self.client.log_batch(self.run_id, metrics=items[start : start + METRIC_BATCH_LIMIT])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, redact(text), artifact_file)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, redact(str(value)))

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException) -> None:
        """Mark the run FAILED (KILLED on interrupt) with the reason as a tag."""
        from reglab.errors import Interrupted, error_reason

        status = "KILLED" if isinstance(error, (Interrupted, KeyboardInterrupt, SystemExit)) else "FAILED"
        reason = str(error) if isinstance(error, Interrupted) else error_reason(error)
        reason = reason[:MAX_PARAM_LENGTH]
        try:
            self.client.set_tag(self.run_id, "reglab.failure_reason", redact(reason))
            self.client.set_terminated(self.run_id, status)
        except Exception:  # the store itself may be what failed; keep the original error
            log.exception("could not mark MLflow run %s as %s", self.run_id, status)
