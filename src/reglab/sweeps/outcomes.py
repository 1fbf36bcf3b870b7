"""Each job of a sweep writes its outcome to ``<job dir>/outcome.json``; the launching
process reads them all when the sweep ends.

Outcome files work for any launcher on a shared file system and also record jobs that
failed before an MLflow run existed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reglab.tracking.redaction import redact_values

OUTCOME_FILE = "outcome.json"
COLUMNS = ["job", "status", "overrides", "objective", "run_id", "reason"]


def write_outcome(
    job_dir: Path,
    *,
    job: int,
    status: str,
    overrides: Sequence[str] = (),
    objective: float = math.nan,
    run_id: str | None = None,
    reason: str | None = None,
) -> None:
    """``<job dir>/outcome.json``: the job's number, ``status`` (FINISHED, FAILED, KILLED,
    SKIPPED), its overrides, objective (NaN unless it has one), MLflow run and the reason it
    did not finish (secrets in URIs redacted)."""
    fields = dict(job=job, status=status, overrides=" ".join(overrides), objective=objective)
    fields |= dict(run_id=run_id, reason=reason)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / OUTCOME_FILE).write_text(json.dumps(redact_values(fields), default=str))


def read_outcomes(sweep_dir: Path) -> list[dict[str, Any]]:
    outcomes = [json.loads(p.read_text()) for p in Path(sweep_dir).glob(f"*/{OUTCOME_FILE}")]
    return sorted(outcomes, key=lambda o: int(o["job"]))


def failed_so_far(sweep_dir: Path) -> int:
    return sum(o["status"] == "FAILED" for o in read_outcomes(sweep_dir))


def outcome_table(outcomes: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame([{c: o.get(c) for c in COLUMNS} for o in outcomes], columns=COLUMNS)


def markdown_cell(value: Any) -> str:
    """A value as one markdown table cell: pipes escaped, line breaks as ``<br>``."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(line.strip() for line in text.strip().splitlines()) if "\n" in text else text


def markdown(table) -> str:
    """A pandas table as a GitHub markdown table (without the tabulate dependency)."""
    header = "| " + " | ".join(markdown_cell(c) for c in table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"
