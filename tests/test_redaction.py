"""The secret parts of URIs are masked; everything else is left alone."""

from __future__ import annotations

import logging

import pytest

from reglab.tracking.redaction import RedactingFilter, redact, redact_files, redact_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:password@host:5000", "http://user:***@host:5000"),
        ("postgresql://u:p%40ss@db/mlflow", "postgresql://u:***@db/mlflow"),
        (
            "logger.tracking_uri=https://a:b@h/x?token=abc&x=1",
            "logger.tracking_uri=https://a:***@h/x?token=***&x=1",
        ),
        ("https://h/api?API_KEY=XYZ;sig=2#frag", "https://h/api?API_KEY=***;sig=***#frag"),
        ("see http://u:pw@h and http://v:qw@k", "see http://u:***@h and http://v:***@k"),
    ],
)
def test_secrets_are_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////home/me/outputs/mlflow.db",
        "http://127.0.0.1:5000",
        "http://user@host",
        "dropout=0.3",
        "regularizer.strength=1e-3",
        "a monkey=3 and keyboard=1",
        "epoch 3/10  val/loss 0.2",
    ],
)
def test_everything_else_is_left_alone(text):
    assert redact(text) == text


def test_nested_values_files_and_log_records(tmp_path):
    assert redact_values({"a": ["http://u:p@h", 3], "b": {"c": "x"}}) == {
        "a": ["http://u:***@h", 3],
        "b": {"c": "x"},
    }
    (tmp_path / "overrides.yaml").write_text("- logger.tracking_uri=http://u:p@h\n")
    redact_files(tmp_path / "overrides.yaml", tmp_path / "absent.yaml")
    assert (tmp_path / "overrides.yaml").read_text() == "- logger.tracking_uri=http://u:***@h\n"
    record = logging.LogRecord("reglab", logging.INFO, __file__, 1, "run in %s", ("http://u:p@h",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == "run in http://u:***@h"
