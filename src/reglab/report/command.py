"""``reglab-report`` / ``python scripts/report.py``: read a sweep, write its report, log it.

Writes ``<output dir>/reports/<study id>/`` (one folder per sweep and the resumes of it; a
``--baseline`` report goes to a ``baseline-<key>=<value>`` folder inside it): ``summary.csv``,
``summary.md``, ``paired_differences.csv``, ``factor_effects.csv`` and ``<name>.png`` per
registered figure that applies (:mod:`reglab.report.figures`), and logs them to the sweep's
parent run under ``report/``. Every verdict in them is one comparison's, decided once
(:mod:`reglab.report.comparisons`, :mod:`reglab.report.decisions`).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from reglab import tracking
from reglab.errors import ReportError
from reglab.report import figures as figure_registry
from reglab.report.axes import choose_baseline, configuration_columns, display_name, resolve_axis
from reglab.report.comparisons import compare, seed_values
from reglab.report.directions import lower_is_better
from reglab.report.figures import DPI, FigureContext
from reglab.report.stats import detect_metric, failed_outcomes, summarize
from reglab.report.store import DEFAULT_EXPERIMENT, Sweep, load_sweep, open_client
from reglab.report.tables import differences_markdown, document, summary_markdown
from reglab.report.tuning import (
    compared_columns,
    declared_tuned,
    restricted,
    select_tuned,
    selection_scores,
    tried_grids,
    tuned_section,
)
from reglab.tracking.redaction import redact

PROG = "reglab-report"
ERROR_STATUS = 2
TABLE_FILES = ("summary.csv", "summary.md", "paired_differences.csv", "factor_effects.csv")


def report_files() -> tuple[str, ...]:
    """The files a report of a sweep where every registered figure applies consists of."""
    return (*TABLE_FILES, *(f"{name}.png" for name in figure_registry.FIGURES))


@dataclass
class Report:
    """What :func:`write_report` wrote (``files`` in ``directory``) and computed: ``comparisons``
    holds every comparison once, with its verdict; ``differences`` (the baseline comparisons)
    and ``effects`` (the factor comparisons) are views of it."""

    directory: Path
    sweep: Sweep
    metric: str
    columns: list[str]
    baseline: dict[str, str]
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    markdown: str
    artifacts_logged: bool
    files: list[str] = field(default_factory=list)

    @property
    def differences(self) -> pd.DataFrame:
        return _view(self.comparisons, "paired_row")

    @property
    def effects(self) -> pd.DataFrame:
        return _view(self.comparisons, "factor_row")


def _view(comparisons: pd.DataFrame, flag: str) -> pd.DataFrame:
    if comparisons.empty:
        return comparisons
    return comparisons[comparisons[flag].astype(bool)].reset_index(drop=True)


def default_output_dir(uri: str) -> Path:
    """The checkout's ``outputs/`` (the folder beside ``conf/``); for a SQLite store found
    elsewhere, the store's folder."""
    database = tracking.sqlite_path(uri)
    outputs = _checkout_outputs()
    if database is not None and database.resolve().parent != outputs.resolve():
        return database.resolve().parent
    return outputs


def _checkout_outputs() -> Path:
    try:
        from reglab.config import find_config_dir

        return find_config_dir().parent / "outputs"
    except FileNotFoundError:
        return Path.cwd() / "outputs"


def heatmap_axes(
    params: pd.DataFrame, columns: list[str], rows: str | None, cols: str | None
) -> tuple[str | None, str | None]:
    """The heatmap's row and column axes: the named ones (see
    :func:`~reglab.report.axes.resolve_axis`), else the first two axes not named."""
    chosen_rows = resolve_axis(rows, params, columns, "--rows") if rows else None
    chosen_cols = resolve_axis(cols, params, columns, "--cols") if cols else None
    if chosen_rows is not None and chosen_rows == chosen_cols:
        raise ReportError(f"--rows {rows} and --cols {cols} name the same param")
    free = [c for c in columns if c not in (chosen_rows, chosen_cols)]
    chosen_rows = chosen_rows or (free.pop(0) if free else None)
    chosen_cols = chosen_cols or (free.pop(0) if free else None)
    if chosen_rows is None and chosen_cols is not None:
        chosen_rows, chosen_cols = chosen_cols, None
    return chosen_rows, chosen_cols


def _finished_with(sweep: Sweep, metric: str | None) -> tuple[pd.Index, str]:
    """The counted runs and the metric to compare; errors when there is nothing to compare."""
    finished = sweep.finished()
    if len(finished) == 0:
        raise ReportError(
            f"sweep {sweep.sweep_id!r} has no finished runs ({len(sweep.failed())} "
            f"failed/killed, {len(sweep.unfinished())} not finished)"
        )
    metrics = sweep.metrics.loc[finished]
    metric = metric or detect_metric(metrics)
    if metric not in metrics or metrics[metric].isna().all():
        available = sorted(c for c in metrics.columns if "/" in c and not c.startswith(("train/", "val/")))
        raise ReportError(
            f"no metric {metric!r} in the finished runs of sweep {sweep.sweep_id!r} "
            f"(final metrics: {', '.join(available)})"
        )
    return finished, metric


def write_report(
    uri: str,
    sweep_id: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    output_dir: str | Path | None = None,
    metric: str | None = None,
    log_artifacts: bool = True,
    *,
    baseline: str | list[str] | None = None,
    rows: str | None = None,
    cols: str | None = None,
    tuned: list[str] | None = None,
    margin: float | None = None,
    compare_keys: list[str] | None = None,
) -> Report:
    """Read the sweep from the store at ``uri``, write the report files to
    ``<output_dir>/reports/<study id>/`` and (``log_artifacts``) log them to the sweep's
    parent run under ``report/``. ``baseline``: ``KEY=VALUE`` (or a list of them) naming the
    reference of every comparison; ``rows`` / ``cols``: the heatmap's axes; ``margin``: the
    equivalence margin in the metric's units; ``compare_keys``: context params to compare
    (:mod:`reglab.report.comparisons`). Raises :class:`ReportError` for what is not in the
    store and for arguments naming no axis."""
    if margin is not None and not margin > 0:
        raise ReportError(f"--margin {margin}: must be a positive number in the metric's units")
    everything = load_sweep(uri, experiment, sweep_id)
    finished, metric = _finished_with(everything, metric)
    sweep, columns, selection, knobs = _at_tuned_points(everything, metric, tuned)
    params = sweep.params.loc[sweep.finished()]
    chosen = choose_baseline(params, columns, baseline)
    for key in compare_keys or []:
        resolve_axis(key, params, columns, "--compare")
    heat_rows, heat_cols = heatmap_axes(params, columns, rows, cols)
    failures = failed_outcomes(everything, columns)
    summary = summarize(sweep, metric, columns, failures)
    comparisons = compare(sweep, metric, columns, chosen, compare_keys or (), margin)
    comparisons = _worst_case(
        comparisons, sweep, everything, metric, columns, chosen, compare_keys, margin, failures
    )
    context = FigureContext(
        sweep,
        metric,
        columns,
        summary,
        _view(comparisons, "paired_row"),
        chosen,
        heat_rows,
        heat_cols,
        _view(comparisons, "factor_row"),
    )

    directory = report_directory(output_dir or default_output_dir(uri), sweep, baseline)
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*report_files(), "tuned_selection.csv", "report.html"):
        (directory / name).unlink(missing_ok=True)
    drawn = _draw_figures(context, directory)
    text = document(everything, sweep, metric, columns, summary, comparisons, chosen, drawn, failures, margin)
    if not selection.empty:
        _, rule = selection_scores(everything, everything.finished())
        grids = tried_grids(everything, knobs, columns)
        headline = "\n".join(tuned_section(selection, knobs, metric, columns, grids, rule))
        first, _, rest = text.partition("## Configurations")
        text = f"{first}{headline}\n## Configurations{rest}"
        selection.to_csv(directory / "tuned_selection.csv", index=False)
    text = redact(text)
    summary.to_csv(directory / "summary.csv", index=False)
    _view(comparisons, "paired_row").to_csv(directory / "paired_differences.csv", index=False)
    _view(comparisons, "factor_row").to_csv(directory / "factor_effects.csv", index=False)
    (directory / "summary.md").write_text(text)
    files = [*TABLE_FILES, *(["tuned_selection.csv"] if not selection.empty else []), *drawn]
    if log_artifacts:
        client = open_client(uri)
        folder = "report" if not baseline else f"report/{directory.name}"
        for name in files:
            client.log_artifact(sweep.parent_run_id, str(directory / name), artifact_path=folder)
        if not baseline:  # the default report is the sweep's answer: its description and page
            from reglab.report.publish import PAGE, publish_to_parent

            publish_to_parent(client, sweep.parent_run_id, directory, text, files)
            files.append(PAGE)
    return Report(directory, sweep, metric, columns, chosen, summary, comparisons, text, log_artifacts, files)


def report_directory(output_dir: str | Path, sweep: Sweep, baseline: str | list[str] | None) -> Path:
    """``<output_dir>/reports/<study id>/``, and ``baseline-<pairs>/`` inside it for a report
    against a chosen ``--baseline`` (so it never overwrites the default report)."""
    folder = Path(output_dir) / "reports" / re.sub(r"[^\w.-]", "_", sweep.study_id)
    if baseline:
        pairs = [baseline] if isinstance(baseline, str) else list(baseline)
        folder = folder / re.sub(r"[^\w.=,-]", "_", "baseline-" + ",".join(pairs))
    return folder


def _worst_case(comparisons, sweep, everything, metric, columns, baseline, compare_keys, margin, failures):
    """``comparisons`` with ``verdict_worst_case``: the verdict when every failed configuration
    and seed (:func:`~reglab.report.stats.failed_outcomes`) counts at the worst value of
    ``metric`` observed in the sweep (empty where nothing failed)."""
    comparisons["verdict_worst_case"] = ""
    if failures.empty or comparisons.empty:
        return comparisons
    frame = seed_values(sweep, metric, columns)
    worst = frame["value"].max() if lower_is_better(metric) else frame["value"].min()
    imputed = failures[[*columns, "seed", "config"]].assign(value=worst).set_index(failures["run_id"])
    frame = pd.concat([frame, imputed[frame.columns]])
    with_failures = sweep_with_runs(sweep, everything, imputed.index)
    worst_case = compare(with_failures, metric, columns, baseline, compare_keys or (), margin, frame)
    verdicts = worst_case.set_index(["config", "reference"])["verdict"]
    comparisons["verdict_worst_case"] = [
        verdicts.get((r.config, r.reference), r.verdict) for r in comparisons.itertuples()
    ]
    return comparisons


def sweep_with_runs(sweep: Sweep, everything: Sweep, run_ids) -> Sweep:
    """``sweep`` with the runs ``run_ids`` of ``everything`` added (their params and metrics)."""
    extra = pd.Index(run_ids).difference(sweep.runs.index)
    return replace(
        sweep,
        runs=pd.concat([sweep.runs, everything.runs.loc[extra]]),
        params=pd.concat([sweep.params, everything.params.loc[extra]]),
        metrics=pd.concat([sweep.metrics, everything.metrics.loc[extra]]),
    )


def _at_tuned_points(sweep: Sweep, metric: str, tuned: list[str] | None):
    """``(sweep, axes, selection, tuned knobs)``: with tuned knobs (declared or given), the
    sweep restricted to the run selected per configuration and seed, and the compared axes;
    without, the sweep and its configuration columns."""
    knobs = declared_tuned(sweep, tuned)
    selection = select_tuned(sweep, knobs, metric) if knobs else pd.DataFrame()
    if selection.empty:
        return sweep, configuration_columns(sweep.params.loc[sweep.finished()]), selection, knobs
    return restricted(sweep, selection.run_id), compared_columns(sweep, knobs), selection, knobs


def _draw_figures(context: FigureContext, directory: Path) -> list[str]:
    """Every registered figure that applies, as ``<name>.png``; returns the file names."""
    drawn = []
    for name, draw in list(figure_registry.FIGURES.items()):
        drawing = draw(context)
        if drawing is not None:
            drawing.savefig(directory / f"{name}.png", dpi=DPI)
            drawn.append(f"{name}.png")
    return drawn


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ablation table, figures and paired differences of one sweep "
        "from the MLflow store (see reglab.report).",
    )
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment (reglab)")
    parser.add_argument(
        "--sweep",
        default=None,
        help="sweep id (tag reglab.sweep_id) or parent run id; default: the latest sweep",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="store (default: $MLFLOW_TRACKING_URI, else sqlite:///<output dir>/mlflow.db)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="outputs folder (default: outputs/ beside conf/); the report goes to "
        "<output dir>/reports/<sweep id>/",
    )
    parser.add_argument(
        "--metric",
        default=None,
        help="test metric to compare (default: test/acc, regression test/r2 or test/mse)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="reference configuration of the paired differences, e.g. dropout=0 "
        "(repeat to fix more params; default: regularizer=none when the regularizer "
        "varies and includes none, else the first value of the first varying param)",
    )
    parser.add_argument(
        "--tuned",
        action="append",
        default=None,
        metavar="KEY",
        help="a tuned knob (repeatable, e.g. --tuned regularizer.strength): per configuration and seed "
        "the value with the best validation loss is selected (default: the runs' study.tuned)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="equivalence margin in the metric's units (e.g. 0.01): verdicts 'equivalent within "
        "±margin' by two one-sided tests, and the seeds a test of that difference needs",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=None,
        metavar="KEY",
        help="a context param to compare too (model, data and trainer params are context by default)",
    )
    parser.add_argument("--rows", default=None, help="heatmap rows: a varying param (default: the first)")
    parser.add_argument(
        "--cols",
        default=None,
        help="heatmap columns: a varying param (default: the "
        "second); the other varying params get one panel per value",
    )
    parser.add_argument(
        "--no-artifacts", action="store_true", help="do not log the files to the sweep's parent run"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``reglab-report`` / ``python scripts/report.py``: 0 on success, 2 with one line on stderr."""
    from reglab.entry import command

    with command(PROG):
        args = parse_args(sys.argv[1:] if argv is None else argv)
        output_dir = args.output_dir or _checkout_outputs()
        uri = tracking.resolve_tracking_uri(args.tracking_uri, output_dir)
        try:
            report = write_report(
                uri,
                args.sweep,
                args.experiment,
                output_dir,
                args.metric,
                log_artifacts=not args.no_artifacts,
                baseline=args.baseline,
                rows=args.rows,
                cols=args.cols,
                tuned=args.tuned,
                margin=args.margin,
                compare_keys=args.compare,
            )
        except ReportError as error:
            print(f"{PROG}: error: {redact(str(error))}", file=sys.stderr)
            return ERROR_STATUS
        _print(report)
    return 0


def _print(report: Report) -> None:
    sweep = report.sweep
    print(
        f"sweep {sweep.sweep_id} of experiment {sweep.experiment}: {len(sweep.finished())} finished runs, "
        f"{len(sweep.failed())} failed/killed; metric {report.metric}; axes "
        f"{', '.join(display_name(c) for c in report.columns) or 'none'}"
    )
    print()
    print(summary_markdown(report.summary, report.metric, report.columns))
    if not report.differences.empty:
        print(differences_markdown(report.differences, report.metric))
    print(f"wrote {', '.join(report.files)} to {report.directory}")
    if report.artifacts_logged:
        print(f"logged to MLflow run {sweep.parent_run_id} under report/")
