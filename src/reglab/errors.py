"""Every error a user of reglab can meet, in one place (importing it costs nothing).

The entry points turn :class:`ConfigError` (and its subclass :class:`DataError`) and
:class:`MissingDataError` into one line on stderr and exit status 2, before anything is
trained or recorded.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value outside what is allowed; the message names key, value and range."""


class DataError(ConfigError):
    """A data source that cannot be used as configured (bad column, missing values, ...)."""


class MissingDataError(FileNotFoundError):
    """A data file or folder is not where the config points; the message names the path
    looked at and how to get the data."""


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


class ReportError(Exception):
    """The report cannot be made (no store, no such sweep, no finished runs, a bad
    argument); the message says why."""


class Interrupted(BaseException):
    """The process got SIGINT (Ctrl-C) or SIGTERM. A ``BaseException``, like
    ``KeyboardInterrupt``, so that no ``except Exception`` swallows it, but not a
    ``KeyboardInterrupt``, which Lightning turns into ``SystemExit(1)``. The command exits
    with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted ({self.signal_name})")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


USER_ERRORS = (ConfigError, MissingDataError)


def error_reason(error: BaseException) -> str:
    """How a failure reads in outcome files and run tags: ``<type>: <message>``."""
    return f"{type(error).__name__}: {error}"
