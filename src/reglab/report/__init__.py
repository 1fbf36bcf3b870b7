"""Ablation report of one sweep: the MLflow store -> tables, figures and paired differences.

    python scripts/report.py                      # the latest sweep of experiment "reglab"
    reglab-report --sweep 20261129-101500-a1b2c3 --metric test/f1 --baseline dropout=0

- :mod:`.store`: the sweep's runs, params and metrics from the store (only FINISHED runs
  enter the numbers, one per config hash; FAILED / KILLED runs are listed with their
  ``reglab.failure_reason``; a ``+resume=true`` launch is read with those it resumed).
- :mod:`.axes`: the axes (the params that vary across the finished runs, seed and
  bookkeeping aside, none repeated), the baseline and the heatmap's axes.
- :mod:`.stats`: per configuration mean and sample std over seeds, failed seeds.
- :mod:`.comparisons`: which comparisons the report makes (compared factors, context, the
  baseline); :mod:`.decisions`: the one rule that decides each (corrected resampled t where seeds
  re-split one data set, Holm over the family, Holm-consistent intervals, equivalence with a
  margin, prospective seeds needed); :mod:`.directions`: which way each metric is better.
- :mod:`.tables`: ``summary.md`` and its markdown tables.
- :mod:`.figures`: the figure registry (heatmap, bars, validation curves).
- :mod:`.command`: :func:`write_report` and the command line (:func:`main`).
"""

from reglab.errors import ReportError
from reglab.report.axes import (
    choose_baseline,
    config_label,
    configuration_columns,
    configurations,
    resolve_axis,
    varying_params,
)
from reglab.report.command import (
    TABLE_FILES,
    Report,
    heatmap_axes,
    main,
    parse_args,
    report_files,
    write_report,
)
from reglab.report.comparisons import compare
from reglab.report.decisions import decide, holm, test_differences
from reglab.report.directions import lower_is_better
from reglab.report.figures import FIGURES, FigureContext, figure, heatmap_panels, new_figure
from reglab.report.stats import detect_metric, sparsity, summarize
from reglab.report.store import DEFAULT_EXPERIMENT, Sweep, load_sweep, open_client, quoted, tag_condition
from reglab.report.tuning import declared_tuned, select_tuned

__all__ = [
    "declared_tuned",
    "holm",
    "compare",
    "decide",
    "test_differences",
    "select_tuned",
    "DEFAULT_EXPERIMENT",
    "FIGURES",
    "FigureContext",
    "Report",
    "ReportError",
    "Sweep",
    "TABLE_FILES",
    "choose_baseline",
    "config_label",
    "configuration_columns",
    "configurations",
    "detect_metric",
    "figure",
    "heatmap_axes",
    "heatmap_panels",
    "load_sweep",
    "lower_is_better",
    "main",
    "new_figure",
    "open_client",
    "parse_args",
    "quoted",
    "report_files",
    "resolve_axis",
    "sparsity",
    "summarize",
    "tag_condition",
    "varying_params",
    "write_report",
]


def __getattr__(name: str):
    if name == "REPORT_FILES":  # follows the figure registry
        return report_files()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
