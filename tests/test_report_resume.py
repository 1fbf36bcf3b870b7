"""The report of a resumed sweep: configurations its jobs skipped as already FINISHED (in any
sweep of the store) count as ran, with the run the skip found; every launch of a chain of
resumes belongs to one study (``Sweep.study_id``)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from conftest import run_cli, store_uri

from reglab import report, tracking
from reglab.sweeps.resume import record_skip

TINY = ["model.hidden=[16]", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory):
    """``(uri, experiment id)`` of a store whose runs are logged by hand (no training)."""
    folder = tmp_path_factory.mktemp("resume")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield uri, tracking.ensure_experiment(uri, "reglab", str(folder / "mlartifacts"))


def _launch(store, sweep_id: str, signature: str, overrides: str, jobs: int) -> tracking.TrackedRun:
    """A sweep's parent run, as the sweep callback starts it."""
    time.sleep(0.01)  # launches are ordered by start time
    parent = tracking.TrackedRun(*store)
    parent.start(
        f"sweep-{sweep_id}",
        {
            "reglab.kind": "sweep",
            "reglab.sweep_id": sweep_id,
            "reglab.sweep_signature": signature,
            "reglab.overrides": overrides,
        },
    )
    parent.log_params({"sweep.jobs": str(jobs)})
    return parent


def _job(store, parent: tracking.TrackedRun, config_hash: str, status: str = "FINISHED") -> str:
    """A job run of ``parent`` with this config hash, ended with ``status``."""
    run = tracking.TrackedRun(*store)
    run.start(config_hash, {"mlflow.parentRunId": parent.run_id, "reglab.config_hash": config_hash})
    run.log_params({"seed": config_hash})
    run.log_metrics({"test/acc": 0.5})
    run.client.set_terminated(run.run_id, status)
    return run.run_id


def test_configurations_skipped_as_finished_in_another_sweep_count_with_that_sweeps_runs(hand_store):
    a = _launch(hand_store, "a", "sig-a", "seed=1,2", 2)
    reused = [_job(hand_store, a, "a1"), _job(hand_store, a, "a2")]
    b = _launch(hand_store, "b", "sig-b", "seed=1,2,3,4 +resume=true", 4)
    for job, run_id in enumerate(reused):
        record_skip(hand_store[0], b.run_id, job, run_id)
    trained = _job(hand_store, b, "b3")  # job 4 never ran
    sweep = report.load_sweep(hand_store[0], sweep_id="b")
    assert set(sweep.runs.index) == {*reused, trained}
    assert sorted(sweep.finished()) == sorted([*reused, trained])
    assert sweep.never_ran() == 1
    assert sweep.launches == 1 and sweep.study_id == "b"
    assert set(report.load_sweep(hand_store[0], sweep_id="a").runs.index) == set(reused)


def test_every_launch_of_a_chain_of_resumes_has_the_first_launchs_sweep_id_as_study(hand_store):
    first = _launch(hand_store, "s1", "sig-s", "seed=1,2", 2)
    done = _job(hand_store, first, "s-1")
    _job(hand_store, first, "s-2", status="KILLED")  # interrupted
    second = _launch(hand_store, "s2", "sig-s", "seed=1,2 +resume=true", 2)
    record_skip(hand_store[0], second.run_id, 0, done)
    rerun = _job(hand_store, second, "s-2")
    third = _launch(hand_store, "s3", "sig-s", "seed=1,2 +resume=true", 2)
    record_skip(hand_store[0], third.run_id, 0, done)
    record_skip(hand_store[0], third.run_id, 1, rerun)
    sweep = report.load_sweep(hand_store[0], sweep_id="s3")
    assert (sweep.sweep_id, sweep.study_id, sweep.launches) == ("s3", "s1", 3)
    assert sorted(sweep.finished()) == sorted([done, rerun]) and sweep.never_ran() == 0
    assert [report.load_sweep(hand_store[0], sweep_id=s).study_id for s in ("s1", "s2")] == ["s1", "s1"]
    fresh = _launch(hand_store, "s4", "sig-s", "seed=1,2", 2)  # no +resume=true: a new study
    _job(hand_store, fresh, "s-1")
    assert report.load_sweep(hand_store[0], sweep_id="s4").study_id == "s4"


def test_a_launch_without_skip_tags_reads_its_skips_from_its_job_table(hand_store):
    old = _launch(hand_store, "old", "sig-old", "seed=1,2 +resume=true", 2)
    elsewhere = _job(hand_store, _launch(hand_store, "other", "sig-other", "seed=1", 1), "o1")
    trained = _job(hand_store, old, "old-2")
    table = pd.DataFrame({"job": [0, 1], "status": ["SKIPPED", "FINISHED"], "run_id": [elsewhere, trained]})
    old.log_text(table.to_csv(index=False), "summary/jobs.csv")
    old.log_metrics({"sweep/skipped": 1})
    sweep = report.load_sweep(hand_store[0], sweep_id="old")
    assert set(sweep.runs.index) == {elsewhere, trained} and sweep.never_ran() == 0

    lost = _launch(hand_store, "lost", "sig-lost", "seed=1,2 +resume=true", 2)
    _job(hand_store, lost, "lost-2")
    lost.log_metrics({"sweep/skipped": 1})  # its job table is missing: the skip is unknown
    assert report.load_sweep(hand_store[0], sweep_id="lost").never_ran() == 1


def test_a_sweep_built_without_a_study_is_its_own_study():
    empty = pd.DataFrame()
    sweep = report.Sweep("e", "0", "s", "p", "sqlite:///unused", 1, empty, empty, empty)
    assert sweep.study_id == "s"


# --------------------------------------------------------------------------- real sweeps


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """``(output dir, sweep ids)`` of three real launches on one store: sweep A over
    ``regularizer=none,l2``; sweep B over ``none,l2,l1`` with ``+resume=true`` (it skips A's
    two configurations: another signature); B again with ``+resume=true`` (skips all three)."""
    out = tmp_path_factory.mktemp("resumed") / "outputs"
    out.mkdir()
    resume = ["regularizer=none,l2,l1", "+resume=true"]
    launches = [
        (["regularizer=none,l2"], "2 finished, 0 skipped"),
        (resume, "1 finished, 2 skipped"),
        (resume, "0 finished, 3 skipped"),
    ]
    ids = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        for grid, counts in launches:
            done = run_cli(["-m", *grid, *TINY], out)
            assert done.returncode == 0 and counts in done.stdout + done.stderr, done.stderr[-3000:]
            ids.append(report.load_sweep(store_uri(out)).sweep_id)
    return out, ids


@pytest.mark.slow
def test_a_resumed_sweep_has_every_planned_configuration_with_the_runs_its_skips_found(resumed):
    out, (a, b, _) = resumed
    first = report.load_sweep(store_uri(out), sweep_id=a)
    sweep = report.load_sweep(store_uri(out), sweep_id=b)
    assert sweep.planned == 3 and len(sweep.finished()) == 3 and sweep.never_ran() == 0
    reused = sweep.params.index[sweep.params["choice.regularizer"] != "l1"]
    assert sorted(reused) == sorted(first.runs.index)
    assert "never ran" not in (out / "reports" / b / "summary.md").read_text()


@pytest.mark.slow
def test_a_sweep_resumed_again_is_one_study_with_the_same_runs(resumed):
    out, (_, b, again) = resumed
    first, last = report.load_sweep(store_uri(out), sweep_id=b), report.load_sweep(store_uri(out))
    assert (last.sweep_id, last.study_id, last.launches) == (again, b, 2)
    assert sorted(last.finished()) == sorted(first.finished()) and last.never_ran() == 0
    # one report folder per study: the second resume wrote into B's, none of its own
    (a, _, _) = resumed[1]
    assert sorted(p.name for p in (out / "reports").iterdir()) == sorted([a, b])
