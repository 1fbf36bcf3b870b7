"""Ablation report of a sweep from the MLflow store: tables, figures, paired differences.

    python scripts/report.py                       # the latest sweep of experiment "reglab"
    python scripts/report.py --sweep <id> --metric test/f1
    python scripts/report.py --baseline dropout=0 --rows dropout --cols regularizer

Same as ``reglab-report``; see :mod:`reglab.report` for what is computed.
"""

from reglab.report import main

if __name__ == "__main__":
    raise SystemExit(main())
