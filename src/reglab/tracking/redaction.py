"""Secrets never leave the process: the secret parts of URIs are masked in everything
reglab writes or logs.

A tracking URI may carry credentials: ``http://user:password@host:5000`` (user info) or
``https://host/?token=...`` (a query parameter). :func:`redact` masks the password of the
user info and the value of every query parameter whose name looks like a credential,
anywhere in a text::

    http://user:password@host:5000       -> http://user:***@host:5000
    https://host/api?token=abc&x=1       -> https://host/api?token=***&x=1

It is applied to the params, tags and artifacts of every run, to the outcome and summary
files of a sweep, to Hydra's copies of the config (``.hydra/*.yaml``, ``multirun.yaml``)
and, through :class:`RedactingFilter` on Hydra's log handlers, to every console and
``train.log`` line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MASK = "***"
SECRET_QUERY_KEYS = (
    "token",
    "access_token",
    "auth",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "api_key",
    "apikey",
    "signature",
    "sig",
    "credential",
    "credentials",
    "session",
)
# scheme://user:password@  (the password may not contain '@', '/' or whitespace)
_USER_INFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)")
_QUERY = re.compile(
    r"(?P<head>[?&;](?:" + "|".join(SECRET_QUERY_KEYS) + r")=)(?P<secret>[^&;#\s'\"]+)", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with URI passwords and credential-like query values replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USER_INFO.sub(lambda m: m.group("head") + MASK, text)
    return _QUERY.sub(lambda m: m.group("head") + MASK, text)


def redact_values(config: Any) -> Any:
    """A nested config (mappings, lists, strings) with every string redacted."""
    if isinstance(config, Mapping):
        return {key: redact_values(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [redact_values(value) for value in config]
    return redact(config) if isinstance(config, str) else config


def redact_files(*paths: Path) -> None:
    """Rewrite each existing text file whose content holds a secret, redacted."""
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text()
        clean = redact(text)
        if clean != text:
            path.write_text(clean)


def redact_hydra_copies(folder: Path) -> None:
    """Hydra's copies of the config in a job or sweep folder (``.hydra/*.yaml``,
    ``multirun.yaml``)."""
    redact_files(*folder.glob(".hydra/*.yaml"), folder / "multirun.yaml")


class RedactingFilter(logging.Filter):
    """A log filter that redacts each record's message (attached to Hydra's handlers in
    ``conf/hydra/default.yaml``, so it covers every logger, Hydra's own included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True
