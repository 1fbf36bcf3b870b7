"""The machine: CPU and versions, and how busy other processes keep it."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from time import perf_counter

from bench.common import load, log


def cpu_snapshot() -> tuple[float, float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its reaped
    children, wall clock): two snapshots give the load that other processes put on the
    machine meanwhile (see :func:`foreign_load`)."""
    busy = 0.0
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError):
        pass
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, perf_counter()


def foreign_load(before: tuple[float, float, float], after: tuple[float, float, float]) -> float | None:
    """Average number of cores busy with other processes between two snapshots."""
    if not before[0]:
        return None
    wall = after[2] - before[2]
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall) if wall > 0 else None


def wait_for_quiet(limit_s: float, threshold: float = 1.0) -> None:
    """Wait up to ``limit_s`` seconds for the 1-minute load average to drop below ``threshold``."""
    deadline = time.monotonic() + limit_s
    while load() > threshold and time.monotonic() < deadline:
        log(f"waiting for the 1-minute load average to drop below {threshold}")
        time.sleep(30)


def _cpu_name() -> str:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def machine_info() -> dict:
    """CPU, cores, torch threads, platform and the versions of the main packages."""
    import lightning
    import torch

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
    for name in ("mlflow", "hydra", "torchmetrics"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # not installed / no version: not part of the result
            pass
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions,
    }
