"""What every command (``train.py``, ``reglab-search``, ``reglab-report``) does around its
work: start-up without the garbage collector in the way, user errors as one line, and
closing words that say how to see what it recorded (:func:`ui_command`).

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
import signal
import sys
from collections.abc import Callable, Iterator

from reglab.errors import USER_ERRORS, Interrupted
from reglab.timing import span

USER_ERROR_STATUS = 2
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def exit_on_user_error(prog: str = "reglab") -> Iterator[None]:
    """Turn a :class:`~reglab.errors.ConfigError` (bad value, bad data file) or a missing
    data set into one line on stderr and exit status 2."""
    try:
        yield
    except USER_ERRORS as error:
        from reglab.tracking.redaction import redact

        print(f"{prog}: error: {redact(str(error))}", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS) from None


_on_interrupt: list[Callable[[Interrupted], None]] = []


def on_interrupt(handler: Callable[[Interrupted], None]) -> None:
    """Call ``handler`` if the current command is interrupted (a sweep closes its parent run
    and says how to resume)."""
    _on_interrupt.append(handler)


def _raise_interrupted(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    raise Interrupted(signum)


@contextlib.contextmanager
def command(prog: str = "reglab") -> Iterator[None]:
    """The context of a whole command: the collector off until the run modules are imported
    (:func:`import_run_modules` turns it back on), user errors as one line and exit status
    2, SIGINT / SIGTERM as :class:`~reglab.errors.Interrupted` (the run in progress is marked
    KILLED, the handlers of :func:`on_interrupt` run, exit status 130 / 143), and a
    ``gc.freeze()`` before exit, whose final collections would otherwise walk every object
    again."""
    gc.disable()
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in INTERRUPTS}
    try:
        with exit_on_user_error(prog):
            yield
    except Interrupted as interrupted:
        for handler in _on_interrupt:
            handler(interrupted)
        print(f"{prog}: {interrupted}", file=sys.stderr)
        raise SystemExit(interrupted.exit_status) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _on_interrupt.clear()
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


def ui_command(uri: str) -> str:
    """How to see the MLflow store at ``uri`` in the MLflow UI: a tracking server is its own
    UI; a database store is served by ``mlflow ui``."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"
