"""Phase timings that the code path records itself: spans.

    from reglab.timing import span, timed

    with span("fit"):
        trainer.fit(...)

    @timed("logging")
    def _start_tracking(...): ...

A span records ``(name, start, seconds)`` in a per-process list when it ends. Timing is
off unless the process starts with the environment variable ``REGLAB_TIMINGS=<file>``
(or calls :func:`enable`); off, ``span(name)`` returns a shared no-op context manager
and ``@timed`` functions check one module flag, a fraction of a microsecond each
(``scripts/bench`` measures it), so spans may stay in the code for good.

With ``REGLAB_TIMINGS=<file>`` the spans are appended to ``<file>`` as JSON lines
``{"name", "start", "seconds", "pid"}`` whenever the outermost open span of the process
ends, and at exit for any left over. ``start`` is on the ``time.time()`` clock (seconds
since the epoch), so the spans of several processes line up with each other and with the
clock of the process that started them; ``seconds`` comes from ``time.perf_counter()``.
Child processes inherit the variable and append to the same file (each line carries its
pid; a forked child forgets its parent's spans). :func:`read_spans` reads such a file
back, :func:`self_times` gives each name's time without the spans nested in it.

reglab's own spans mark the phases of a run: ``hydra`` (around ``hydra.main`` in
:func:`reglab.cli.main`), ``import`` (:func:`reglab.entry.import_run_modules`),
``config`` and ``build`` (:func:`reglab.pipeline.prepare`, ``train``), ``data`` (the data
module's setup), ``store`` (``ensure_experiment``), ``logging`` (MLflow writes), ``fit``
and ``test`` (:func:`reglab.fit.fit_and_test`), and in a sweep ``sweep job``, ``sweep
summary`` and ``sweep report``. ``scripts/bench`` turns them into its phase tables.

Spans nest, and nesting is told from the intervals alone: spans are recorded from the
main thread only (the depth used to decide when to write is shared by the threads of a
process, and another thread's work overlaps the main thread's spans); in other threads
``span`` and ``@timed`` do nothing.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from time import perf_counter, time
from typing import Any, NamedTuple, TypeVar

ENV = "REGLAB_TIMINGS"

F = TypeVar("F", bound=Callable[..., Any])


class Span(NamedTuple):
    """One finished span: ``start`` in seconds since the epoch, ``seconds`` its duration."""

    name: str
    start: float
    seconds: float
    pid: int


_enabled = False
_path: str | None = None
_records: list[tuple[str, float, float]] = []  # (name, perf_counter at start, seconds)
_written = 0  # records before this index are in the file already
_depth = 0
_exit_hook = False
_OFFSET = time() - perf_counter()  # perf_counter -> time.time clock


class _Off:
    """What :func:`span` returns while timing is off: enter and exit do nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_OFF = _Off()


class _On:
    __slots__ = ("name", "start")

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        global _depth
        _depth += 1
        self.start = perf_counter()

    def __exit__(self, *exc: object) -> None:
        global _depth
        _records.append((self.name, self.start, perf_counter() - self.start))
        _depth -= 1
        if _depth <= 0:
            _depth = 0
            _write()


def span(name: str) -> _On | _Off:
    """A context manager recording how long its block took under ``name``."""
    return _On(name) if _enabled and threading.current_thread() is threading.main_thread() else _OFF


def timed(name: str) -> Callable[[F], F]:
    """Decorator: every call of the function is a span ``name`` (while timing is on)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _enabled or threading.current_thread() is not threading.main_thread():
                return function(*args, **kwargs)
            with _On(name):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def enabled() -> bool:
    return _enabled


def enable(path: str | os.PathLike | None = None) -> None:
    """Turn timing on; with ``path``, spans are appended to that file (see the module
    docstring), else they are only kept in memory (:func:`records`)."""
    global _enabled, _path, _exit_hook
    _path = os.fspath(path) if path else None
    _enabled = True
    if _path and not _exit_hook:
        atexit.register(_write)
        _exit_hook = True


def disable() -> None:
    """Turn timing off; spans not yet in the file are written first."""
    global _enabled
    _write()
    _enabled = False


def clear() -> None:
    """Forget this process's spans (those already written stay in the file)."""
    global _written, _depth
    _records.clear()
    _written = 0
    _depth = 0


def records() -> list[Span]:
    """The spans this process has finished, in the order they ended."""
    pid = os.getpid()
    return [Span(name, _OFFSET + start, seconds, pid) for name, start, seconds in _records]


def _write() -> None:
    global _written
    if not _path or _written >= len(_records):
        return
    pid = os.getpid()
    lines = "".join(
        json.dumps({"name": name, "start": _OFFSET + start, "seconds": seconds, "pid": pid}) + "\n"
        for name, start, seconds in _records[_written:]
    )
    _written = len(_records)
    try:  # one append: lines of concurrent processes do not interleave
        handle = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, lines.encode())
        finally:
            os.close(handle)
    except OSError as error:  # timing must not break the run it measures
        warnings.warn(f"reglab.timing: spans not written to {_path}: {error}", stacklevel=2)


def _forget_after_fork() -> None:
    clear()


def read_spans(path: str | os.PathLike) -> list[Span]:
    """The spans in a ``REGLAB_TIMINGS`` file (a cut-off last line is skipped)."""
    spans = []
    with open(path) as handle:
        for line in handle:
            try:
                item = json.loads(line)
                spans.append(
                    Span(str(item["name"]), float(item["start"]), float(item["seconds"]), int(item["pid"]))
                )
            except (ValueError, KeyError, TypeError):
                continue
    return spans


def self_times(spans: Iterable[Span], tolerance: float = 1e-6) -> dict[str, float]:
    """Seconds per name, each span minus the spans directly nested in it (per process), so
    the values of one process's spans add up to the time covered by its outermost spans."""
    totals: dict[str, float] = {}
    by_pid: dict[int, list[Span]] = {}
    for item in spans:
        by_pid.setdefault(item.pid, []).append(item)
    for group in by_pid.values():
        group.sort(key=lambda s: (s.start, -s.seconds))
        stack: list[tuple[float, str]] = []  # (end, name) of the open enclosing spans
        for item in group:
            end = item.start + item.seconds
            while stack and stack[-1][0] < end - tolerance:
                stack.pop()  # ended before this one ends: not an enclosing span
            if stack:
                totals[stack[-1][1]] = totals.get(stack[-1][1], 0.0) - item.seconds
            totals[item.name] = totals.get(item.name, 0.0) + item.seconds
            stack.append((end, item.name))
    return totals


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_after_fork)
if os.environ.get(ENV):
    enable(os.environ[ENV])
