"""A sweep's identity, written once by the launching process to ``<sweep dir>/sweep.json``.

Every job of the sweep reads it from the folder its own job folder lives in, which works
for any launcher that shares the file system (basic, joblib, submitit local / SLURM), and
nothing outlives the sweep in the environment of the launching process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MANIFEST_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepManifest:
    """What each job of a sweep needs to know about the sweep.

    ``parent_run_id`` / ``experiment_id`` are set when the sweep is tracked in MLflow;
    ``threads_per_job`` when jobs run in parallel on one machine.
    """

    sweep_id: str
    sweep_dir: str
    size: int
    started: float
    signature: str
    parent_run_id: str | None = None
    experiment_id: str | None = None
    threads_per_job: int | None = None

    def write(self) -> Path:
        path = Path(self.sweep_dir) / MANIFEST_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(self), indent=1))
        temporary.replace(path)  # a job never reads half a manifest
        return path

    @classmethod
    def read(cls, sweep_dir: str | Path) -> SweepManifest | None:
        """The manifest of the sweep in ``sweep_dir``; ``None`` when there is none."""
        path = Path(sweep_dir) / MANIFEST_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))


def new_sweep_id() -> str:
    import uuid

    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def count_jobs(overrides: Sequence[str], sweeper_params: Mapping[str, Any]) -> int:
    """Number of jobs of a basic-sweeper grid: product of the sweep lengths."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in sweeper_params.items()] + list(overrides)
    parsed = {o.get_key_element(): o for o in OverridesParser.create().parse_overrides(arguments)}
    return math.prod(len(list(o.sweep_string_iterator())) for o in parsed.values() if o.is_sweep_override())


def signature(overrides: Sequence[str], sweeper_params: Mapping[str, Any]) -> str:
    """Same sweep command (grid and fixed overrides, ``resume`` aside) -> same signature."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith("resume"))
    text = json.dumps([kept, sorted((str(k), str(v)) for k, v in sweeper_params.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def threads_per_job(launcher: Any) -> int | None:
    """CPU threads per job when jobs run in parallel (joblib): cores / parallel jobs."""
    target = str(launcher.get("_target_", ""))
    if "Joblib" not in target:
        return None
    cores = os.cpu_count() or 1
    n_jobs = int(launcher.get("n_jobs", -1))
    parallel = cores if n_jobs < 1 else min(n_jobs, cores)
    return max(1, cores // parallel)
