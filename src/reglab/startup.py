"""Process start-up: import what a run needs without the garbage collector in the way.

Importing torch, lightning (with torch._dynamo, torchmetrics, scipy) and mlflow creates
about a million long-lived objects. With the collector on, its full passes over them
while they are created, and again at interpreter exit, cost seconds per process on a
2-core laptop (BENCHMARKS.md, start-up). Entry points therefore turn the collector off
first thing, call :func:`import_run_modules` before the first run, and freeze again
before exiting.
"""

from __future__ import annotations

import functools
import gc


@functools.cache
def _import_and_freeze(with_mlflow: bool) -> None:
    gc.disable()
    import lightning.pytorch  # noqa: F401

    import reglab.module  # noqa: F401
    import reglab.pipeline  # noqa: F401

    if with_mlflow:
        import mlflow  # noqa: F401
    gc.freeze()


def import_run_modules(with_mlflow: bool = True) -> None:
    """Import lightning, reglab's training modules and (``with_mlflow``) mlflow with the
    collector off, move every object alive to the permanent generation (``gc.freeze``:
    never scanned again), then turn the collector on for the run itself.

    The import and the freeze happen once per process (and ``with_mlflow`` value):
    freezing after every run would also freeze the cyclic garbage of earlier runs, which
    would then never be freed.
    """
    try:
        _import_and_freeze(with_mlflow)
    finally:
        gc.enable()
