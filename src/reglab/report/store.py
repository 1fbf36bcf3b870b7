"""Reading one sweep from the MLflow store: its parent run(s), child runs, params and metrics.

A sweep is a parent run tagged ``reglab.kind = sweep``; its runs are the children tagged
``mlflow.parentRunId = <parent>`` or ``reglab.sweep_id = <sweep id>``. A launch started
with ``+resume=true`` is read together with the earlier launches it resumed (same
``reglab.sweep_signature``), and with the FINISHED runs its jobs reused instead of training
them (``reglab.skipped.<job>`` tags of each launch's parent: runs of any sweep).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass

import pandas as pd

from reglab import tracking
from reglab.errors import ReportError
from reglab.sweeps.resume import SKIPPED_TAG

DEFAULT_EXPERIMENT = "reglab"
MISSING = "-"  # a param a run does not have (regularizer.strength of `none`)
SWEEP_TAG = "reglab.sweep_id"
PAGE = 1000
IDS_PER_SEARCH = 100  # run ids per ``attributes.run_id IN (...)`` filter
UNWRITABLE = re.compile(r"""['"\\]""")  # characters a LIKE pattern of tag_condition() leaves out


@dataclass
class Sweep:
    """The runs of one sweep, as frames indexed by run id: the runs of its launches and the
    FINISHED runs (of any sweep) that its jobs reused on ``+resume=true``.

    ``study_id``: the sweep id of the first launch of a chain of resumes (``sweep_id`` when
    not given), the same for every launch of one study.
    ``runs``: status, start_time, config_hash, failure_reason, run_name.
    ``params``: every param as a string, :data:`MISSING` where a run lacks it.
    ``metrics``: every final (latest) metric, NaN where missing.
    """

    experiment: str
    experiment_id: str
    sweep_id: str
    parent_run_id: str
    uri: str
    launches: int
    runs: pd.DataFrame
    params: pd.DataFrame
    metrics: pd.DataFrame
    planned: int | None = None  # jobs the sweep command asked for (the parent's sweep.jobs)
    ran: int | None = None  # configurations with a run, when ``runs`` holds only some of them
    study_id: str | None = None

    def __post_init__(self) -> None:
        if self.study_id is None:
            self.study_id = self.sweep_id

    def never_ran(self) -> int:
        """Jobs of the sweep with no run at all (an interrupted sweep): planned minus the
        distinct configurations that have a run (reused ones included)."""
        if self.planned is None:
            return 0
        ran = self.ran if self.ran is not None else self.runs.config_hash.nunique(dropna=True)
        return max(0, self.planned - ran)

    def finished(self) -> pd.Index:
        """FINISHED runs, one per config hash (the latest): a rerun does not count twice."""
        done = self.runs[self.runs.status == "FINISHED"].sort_values("start_time")
        hashed = done[done.config_hash.notna()].drop_duplicates("config_hash", keep="last")
        return pd.Index([*hashed.index, *done[done.config_hash.isna()].index])

    def failed(self) -> pd.DataFrame:
        """FAILED / KILLED runs, with ``rerun_finished`` where the same config later FINISHED."""
        bad = self.runs[self.runs.status.isin(["FAILED", "KILLED"])].copy()
        done = set(self.runs.loc[self.runs.status == "FINISHED", "config_hash"].dropna())
        bad["rerun_finished"] = bad.config_hash.isin(done)
        return bad.sort_values("start_time")

    def unfinished(self) -> pd.DataFrame:
        """Runs still RUNNING (or SCHEDULED): a sweep in progress."""
        return self.runs[~self.runs.status.isin(["FINISHED", "FAILED", "KILLED"])]


def open_client(uri: str):
    """An MLflow client on an existing store (a missing SQLite file is an error, not a new store)."""
    tracking.disable_telemetry()
    database = tracking.sqlite_path(uri)
    if database is not None and not database.exists():
        raise ReportError(
            f"no MLflow store at {database} (run a sweep first, or pass --tracking-uri or --output-dir)"
        )
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking.connection_uri(uri))


# --------------------------------------------------------------------------- filter strings


def quoted(value: str) -> str | None:
    """The string literal of MLflow's filter grammar that denotes exactly ``value``, or None.

    MLflow splits a filter with ``sqlparse`` and turns a string token into its value by
    dropping the first and last character (``SearchUtils._strip_quotes``): there is no
    escape sequence, ``'a\\'b'`` means ``a\\'b``. sqlparse reads ``'...'`` up to the next
    ``'`` not preceded by a backslash (``"..."`` alike). So ``value`` is written verbatim
    between quotes of a kind it does not contain, and not at all when it contains both
    kinds or ends with a backslash (which would swallow the closing quote).
    """
    if value.endswith("\\"):
        return None
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


def tag_condition(key: str, value: str) -> str:
    """A filter condition true for the runs whose tag ``key`` equals ``value``, and maybe
    others: where :func:`quoted` has no literal, ``LIKE`` with ``_`` (any one character)
    in place of each quote and backslash. :func:`search_tagged` keeps the exact matches."""
    literal = quoted(value)
    if literal is not None:
        return f"tags.`{key}` = {literal}"
    pattern = UNWRITABLE.sub("_", value)
    return f"tags.`{key}` LIKE '{pattern}'"


def search(client, experiment_id: str, filter_string: str) -> list:
    """Every run of the experiment that matches ``filter_string``, newest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string,
            max_results=PAGE,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def search_tagged(client, experiment_id: str, key: str, value: str) -> list:
    """The runs whose tag ``key`` is exactly ``value`` (any characters), newest first."""
    runs = search(client, experiment_id, tag_condition(key, value))
    return [run for run in runs if run.data.tags.get(key) == value]


# --------------------------------------------------------------------------- one sweep


def load_sweep(uri: str, experiment: str = DEFAULT_EXPERIMENT, sweep_id: str | None = None) -> Sweep:
    """The sweep ``sweep_id`` (its ``reglab.sweep_id`` tag or parent run id; default: the
    latest sweep) of ``experiment`` in the store at ``uri``."""
    client = open_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(
            f"no experiment {experiment!r} in {uri} (experiments: {', '.join(names) or 'none'})"
        )
    experiment_id = found.experiment_id
    parents = search_tagged(client, experiment_id, "reglab.kind", "sweep")
    if not parents:
        raise ReportError(
            f"experiment {experiment!r} has no sweeps (no parent run tagged reglab.kind=sweep); "
            "start one with: python train.py -m regularizer=none,l2 seed=1,2,3"
        )
    parent = _parent(parents, experiment, sweep_id)
    name = parent.data.tags.get(SWEEP_TAG, parent.info.run_id)
    launches = sweep_launches(parents, parent)
    children, reused = {}, set()
    for launch in launches:
        found_runs = search_tagged(client, experiment_id, "mlflow.parentRunId", launch.info.run_id)
        if launch.data.tags.get(SWEEP_TAG):
            found_runs += search_tagged(client, experiment_id, SWEEP_TAG, launch.data.tags[SWEEP_TAG])
        for run in found_runs:
            if run.data.tags.get("reglab.kind") != "sweep":
                children.setdefault(run.info.run_id, run)
        reused |= reused_run_ids(client, launch)
    for run in runs_by_id(client, experiment_id, sorted(reused - children.keys())):
        children.setdefault(run.info.run_id, run)
    if not children:
        raise ReportError(f"sweep {name!r} of experiment {experiment!r} has no runs yet")
    planned = parent.data.params.get("sweep.jobs")
    return Sweep(
        experiment,
        experiment_id,
        name,
        parent.info.run_id,
        uri,
        len(launches),
        *_frames(children.values()),
        planned=int(planned) if planned and planned.isdigit() else None,
        study_id=launches[-1].data.tags.get(SWEEP_TAG, launches[-1].info.run_id),
    )


def _parent(parents: list, experiment: str, sweep_id: str | None):
    """The parent run named ``sweep_id`` (tag or run id), else the newest."""
    if sweep_id is None:
        return parents[0]
    for parent in parents:
        if sweep_id in (parent.data.tags.get(SWEEP_TAG), parent.info.run_id):
            return parent
    names = [p.data.tags.get(SWEEP_TAG, p.info.run_id) for p in parents]
    shown = ", ".join(names[:20]) + (f" (+{len(names) - 20} more)" if len(names) > 20 else "")
    raise ReportError(
        f"no sweep {sweep_id!r} in experiment {experiment!r}; available (newest first): {shown}"
    )


def _resumed(run) -> bool:
    overrides = run.data.tags.get("reglab.overrides", "").split()
    return any(
        o.lstrip("+~").startswith("resume=") and o.split("=", 1)[1].lower() not in ("false", "0")
        for o in overrides
    )


def sweep_launches(parents: list, parent) -> list:
    """``parent`` and, while it was a ``+resume=true`` launch, the earlier launches with the
    same sweep signature (newest first) back to the one that started the sweep."""
    launches = [parent]
    signature = parent.data.tags.get("reglab.sweep_signature")
    earlier = [
        p
        for p in parents
        if signature
        and p.data.tags.get("reglab.sweep_signature") == signature
        and p.info.start_time < parent.info.start_time
    ]
    for previous in earlier:  # parents are newest first
        if not _resumed(launches[-1]):
            break
        launches.append(previous)
    return launches


def reused_run_ids(client, launch) -> set[str]:
    """The FINISHED runs that the jobs of ``launch`` (a parent run) skipped to on resume: its
    ``reglab.skipped.<job>`` tags, completed from the SKIPPED rows of its ``summary/jobs.csv``
    when they account for fewer jobs than its ``sweep/skipped`` metric (a launch recorded
    before the tags existed)."""
    from mlflow.exceptions import MlflowException

    tagged = [v for k, v in launch.data.tags.items() if k.startswith(f"{SKIPPED_TAG}.")]
    if len(tagged) >= launch.data.metrics.get("sweep/skipped", 0):
        return set(tagged)
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(launch.info.run_id, "summary/jobs.csv", folder)
        except (MlflowException, OSError):
            return set(tagged)
        jobs = pd.read_csv(path, dtype=str)
    return set(tagged) | set(jobs.loc[jobs.status == "SKIPPED", "run_id"].dropna())


def runs_by_id(client, experiment_id: str, run_ids: list[str]) -> list:
    """The runs of the experiment with these ids (deleted ones, and ids no filter literal can
    denote, left out)."""
    literals = [literal for literal in map(quoted, run_ids) if literal is not None]
    runs = []
    for start in range(0, len(literals), IDS_PER_SEARCH):
        chunk = ", ".join(literals[start : start + IDS_PER_SEARCH])
        runs += search(client, experiment_id, f"attributes.run_id IN ({chunk})")
    return runs


def _frames(runs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs = list(runs)
    ids = [r.info.run_id for r in runs]
    info = pd.DataFrame(
        {
            "status": [r.info.status for r in runs],
            "start_time": [r.info.start_time or 0 for r in runs],
            "config_hash": [r.data.tags.get("reglab.config_hash") for r in runs],
            "failure_reason": [r.data.tags.get("reglab.failure_reason", "") for r in runs],
            "run_name": [r.data.tags.get("mlflow.runName", r.info.run_name or "") for r in runs],
        },
        index=pd.Index(ids, name="run_id"),
    )
    params = pd.DataFrame([r.data.params for r in runs], index=info.index, dtype=object)
    params = params.reindex(columns=sorted(params.columns)).fillna(MISSING).astype(object)
    metrics = pd.DataFrame([r.data.metrics for r in runs], index=info.index, dtype=float)
    return info, params, metrics


def metric_histories(sweep: Sweep, run_ids, key: str) -> dict[str, pd.Series]:
    """Per run, ``key`` by epoch (the MLflow step); runs without it are left out."""
    client = open_client(sweep.uri)
    histories = {}
    for run_id in run_ids:
        points = client.get_metric_history(run_id, key)
        if points:
            series = pd.Series({p.step: p.value for p in sorted(points, key=lambda p: p.timestamp)})
            histories[run_id] = series.sort_index()
    return histories
