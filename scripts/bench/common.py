"""Constants shared by the sections, and the progress log on stderr."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("loop", "penalty", "startup", "sweep", "stacked")
SUBPROCESS_SECTIONS = ("startup", "sweep", "stacked")
REGULARIZERS = ("none", "l1", "l2", "elastic", "group_lasso")
SWEEP_GRID = ["regularizer=none,l1,l2,elastic", "dropout=0,0.3,0.5"]
QUICK_SWEEP_GRID = ["regularizer=none,l1"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]

TARGET_LOOP, STRETCH_LOOP = 1.25, 1.10
TARGET_PENALTY = 1.05
TARGET_DEFAULT_RUN_S = 8.0
TARGET_SWEEP_OVERHEAD_S = 0.5
TARGET_STACKED_SPEEDUP = 4.0


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {load():.2f}] {message}", file=sys.stderr, flush=True)


def mnist1d_available() -> str | None:
    """None when data=mnist1d can run, else why not."""
    if not (ROOT / "conf" / "data" / "mnist1d.yaml").is_file():
        return "conf/data/mnist1d.yaml not found"
    try:
        import mnist1d  # noqa: F401
    except ImportError:
        return "the mnist1d package is not installed"
    return None
