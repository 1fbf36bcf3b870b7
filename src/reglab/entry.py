"""What every command (``train.py``, ``reglab-search``, ``reglab-report``) does around its
work: start-up without the garbage collector in the way, and user errors as one line.

Importing torch, lightning (with torch._dynamo, torchmetrics, scipy) and mlflow creates
about a million long-lived objects. With the collector on, its full passes over them
while they are created, and again at interpreter exit, cost seconds per process on a
2-core laptop (BENCHMARKS.md, start-up). :func:`command` therefore turns the collector off
first thing, a command calls :func:`import_run_modules` before its first run, and
everything alive is frozen before the interpreter exits.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
from collections.abc import Iterator

from reglab.errors import USER_ERRORS
from reglab.timing import span

USER_ERROR_STATUS = 2


@contextlib.contextmanager
def exit_on_user_error(prog: str = "reglab") -> Iterator[None]:
    """Turn a :class:`~reglab.errors.ConfigError` (bad value, bad data file) or a missing
    data set into one line on stderr and exit status 2."""
    try:
        yield
    except USER_ERRORS as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS) from None


@contextlib.contextmanager
def command(prog: str = "reglab") -> Iterator[None]:
    """The context of a whole command: the collector off until the run modules are imported
    (:func:`import_run_modules` turns it back on), user errors as one line and exit status
    2, and a ``gc.freeze()`` before exit, whose final collections would otherwise walk every
    object again."""
    gc.disable()
    try:
        with exit_on_user_error(prog):
            yield
    finally:
        gc.freeze()
        gc.enable()


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
        with span("import"):
            _import_and_freeze(with_mlflow)
    finally:
        gc.enable()
