"""Ctrl-C (SIGINT) or SIGTERM on a sweep: the interrupted job and the parent are KILLED
with the reason "interrupted", the sweep says how to resume, and the exit status is
128 + the signal; the printed command resumes it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, all_runs, child_runs, store_uri

pytestmark = pytest.mark.slow

SWEEP = ["-m", "regularizer=none,l1,l2", "trainer.max_epochs=12", "model.hidden=[16]"]
# 12 epochs: job 2 is signalled after its first epoch line, with 10 more epochs still to train


def _interrupt(sweep: list[str], output_dir, signum: int, when) -> subprocess.CompletedProcess:
    """Start ``train.py`` with ``sweep``; send ``signum`` once ``when(lines so far)`` holds."""
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [sys.executable, "train.py", *sweep, f"paths.output_dir={output_dir}"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if when(lines):
            break
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + rest, "")


def _interrupt_during_job_2(output_dir, signum: int) -> subprocess.CompletedProcess:
    def second_job_training(lines: list[str]) -> bool:  # job 2 has logged an epoch
        started = next((i for i, line in enumerate(lines) if "job 2/3" in line), None)
        return started is not None and re.search(r"epoch \d+/12", lines[-1]) is not None

    return _interrupt(SWEEP, output_dir, signum, second_job_training)


def test_sigint_kills_the_job_and_the_parent_and_prints_the_resume_command(output_dir):
    done = _interrupt_during_job_2(output_dir, signal.SIGINT)
    assert done.returncode == 130, done.stdout[-3000:]
    assert "interrupted (SIGINT)" in done.stdout
    runs = all_runs(store_uri(output_dir))
    parent = [r for r in runs if r.data.tags.get("reglab.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("reglab.kind") != "sweep"]
    assert [p.info.status for p in parent] == ["KILLED"]
    assert parent[0].data.tags["reglab.failure_reason"] == "interrupted (SIGINT)"
    statuses = sorted(r.info.status for r in children)
    assert statuses == ["FINISHED", "KILLED"], statuses
    (killed,) = [r for r in children if r.info.status == "KILLED"]
    assert killed.data.tags["reglab.failure_reason"] == "interrupted (SIGINT)"
    assert "1 never ran" in done.stdout
    from reglab.report import main as report

    assert (
        report(["--tracking-uri", store_uri(output_dir), "--output-dir", str(output_dir), "--no-artifacts"])
        == 0
    )
    (summary,) = output_dir.glob("reports/*/summary.md")
    assert "1 of the 3 planned jobs never ran" in summary.read_text()
    command = re.search(r"resume with: python (.*)", done.stdout).group(1)
    words = shlex.split(command)
    assert words[0] == "train.py" and words[-1] == "+resume=true"
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    resumed = subprocess.run(
        [sys.executable, *words], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    children = child_runs(output_dir)
    finished = [r.data.params["choice.regularizer"] for r in children if r.info.status == "FINISHED"]
    assert sorted(finished) == ["l1", "l2", "none"]  # none was skipped, not run twice


def test_sigterm_exits_143(output_dir):
    done = _interrupt_during_job_2(output_dir, signal.SIGTERM)
    assert done.returncode == 143, done.stdout[-3000:]
    assert "interrupted (SIGTERM)" in done.stdout
    assert {r.info.status for r in all_runs(store_uri(output_dir))} == {"FINISHED", "KILLED"}


def test_sigint_during_a_stacked_fit_kills_its_members_and_resume_trains_them(output_dir):
    """The members of a stack being trained are KILLED (outcome files: they have no MLflow
    run before they are recorded), the parent is KILLED, nothing is left RUNNING, and the
    printed command trains them all."""
    # signalled at epoch 2 of 30: 28 epochs still to train; the resumed sweep trains at most 30
    sweep = ["-m", "seed=0,1,2", "model.hidden=[16]", "trainer.max_epochs=30", "hydra/launcher=stacked"]
    sweep.append("callbacks.early_stopping.patience=2")  # the resumed sweep stops soon
    done = _interrupt(sweep, output_dir, signal.SIGINT, lambda lines: "epoch 2/30" in lines[-1])
    assert done.returncode == 130, done.stdout[-3000:]
    runs = all_runs(store_uri(output_dir))
    assert [r.info.status for r in runs] == ["KILLED"]  # the parent; members had no run yet
    assert runs[0].data.tags["reglab.failure_reason"] == "interrupted (SIGINT)"
    (sweep_dir,) = output_dir.glob("multiruns/*/*")
    from reglab.sweeps import outcomes

    killed = outcomes.read_outcomes(sweep_dir)
    assert sorted(o["status"] for o in killed) == ["KILLED"] * 3
    assert {o["reason"] for o in killed} == {"interrupted (SIGINT)"}
    words = shlex.split(re.search(r"resume with: python (.*)", done.stdout).group(1))
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    resumed = subprocess.run(
        [sys.executable, *words], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    children = child_runs(output_dir)
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["reglab.engine"] for r in children} == {"stacked"}


STACKS = ["-m", "seed=range(6)", "model.hidden=[16]", "trainer.max_epochs=3", "hydra/launcher=stacked"]
STACKS.append("hydra.launcher.max_members=3")  # two stacks: the first's records, the second's fit


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGKILL, "-1 epoch 2/3"),  # mid-stack
        (signal.SIGKILL, "-1 trained in"),  # during the first stack's tests and records
        (signal.SIGINT, "-1 trained in"),
    ],
    ids=["sigkill-mid-stack", "sigkill-records", "sigint-records"],
)
def test_a_stacked_sweep_killed_then_resumed_finishes_every_configuration_once(output_dir, signum, moment):
    """Killed while a stack trains or while its members are tested and recorded (the next stack
    training meanwhile), then ``+resume=true``: every configuration FINISHED exactly once,
    nothing left RUNNING (a member's run is written whole, or not at all)."""
    done = _interrupt(STACKS, output_dir, signum, lambda lines: moment in lines[-1])
    assert done.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), done.stdout[-3000:]
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    resumed = subprocess.run(
        [sys.executable, "train.py", *STACKS, "+resume=true", f"paths.output_dir={output_dir}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = all_runs(store_uri(output_dir))
    assert "RUNNING" not in {r.info.status for r in runs}
    finished = [r for r in child_runs(output_dir) if r.info.status == "FINISHED"]
    assert sorted(r.data.params["seed"] for r in finished) == [str(s) for s in range(6)]
    assert {r.data.tags["reglab.engine"] for r in finished} == {"stacked"}
