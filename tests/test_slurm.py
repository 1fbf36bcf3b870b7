"""A sweep through a real single-node SLURM cluster (Debian's slurmctld, slurmd, munge),
started by the test: failed runs fail their array task, a killed task is recorded, and
``+resume=true`` submits only what is left."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, all_runs, child_runs, store_uri

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("slurmctld") is None, reason="SLURM is not installed (see .ci/run)"),
]

SMALL_NODE = [  # what a small partition needs (README, "Running on a cluster")
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
]
QUICK = ["model.hidden=[8]"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_config(folder: Path) -> Path:
    host = socket.gethostname()
    for name in ("state", "spool"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    config = folder / "slurm.conf"
    config.write_text(
        "\n".join(
            [
                "ClusterName=reglab-test",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"StateSaveLocation={folder / 'state'}",
                f"SlurmdSpoolDir={folder / 'spool'}",
                f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
                f"SlurmdPidFile={folder / 'slurmd.pid'}",
                f"SlurmctldLogFile={folder / 'slurmctld.log'}",
                f"SlurmdLogFile={folder / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "AccountingStorageType=accounting_storage/none",
                "JobAcctGatherType=jobacct_gather/none",
                "ReturnToService=2",
                "MpiDefault=none",
                "MinJobAge=3600",  # keep finished jobs visible to scontrol
                "KillWait=1",  # a cancelled task gets SIGKILL 1 s after SIGTERM (submitit ignores SIGTERM)
                f"NodeName={host} CPUs={os.cpu_count()} RealMemory=4000 State=UNKNOWN",
                f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    return config


def _start_munge() -> None:
    if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
        return
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], check=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """``SLURM_CONF`` of a one-node cluster, idle and ready; stopped afterwards."""
    folder = tmp_path_factory.mktemp("slurm")
    config = _write_config(folder)
    environment = dict(os.environ, SLURM_CONF=str(config))
    _start_munge()
    daemons = [
        subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in (["slurmctld", "-D", "-i"], ["slurmd", "-D"])
    ]
    deadline = time.time() + 60
    while (
        "idle"
        not in subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=environment, capture_output=True, text=True
        ).stdout
    ):
        assert time.time() < deadline, (folder / "slurmctld.log").read_text()[-2000:]
        time.sleep(0.5)
    yield str(config)
    for daemon in daemons:
        daemon.terminate()
        daemon.wait(timeout=30)


def _sweep(arguments: list[str], output_dir: Path, slurm: str, wait: bool = True):
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment["SLURM_CONF"] = slurm
    command = [
        sys.executable,
        "train.py",
        "-m",
        *SMALL_NODE,
        *QUICK,
        *arguments,
        f"paths.output_dir={output_dir}",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def _task_states(slurm: str) -> dict[str, tuple[str, str]]:
    """``{"<array job>_<task>": (state, exit code)}`` of every job the cluster remembers."""
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job"],
        env=dict(os.environ, SLURM_CONF=slurm),
        capture_output=True,
        text=True,
    ).stdout
    states = {}
    for line in shown.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        states[f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"] = (fields["JobState"], fields["ExitCode"])
    return states


def test_a_failed_run_fails_its_task_and_the_sweep_goes_on(slurm, output_dir):
    status, output = _sweep(["optimizer.lr=1e-3,1e6", "trainer.max_epochs=2"], output_dir, slurm)
    assert status == 1, output[-3000:]
    children = child_runs(output_dir)
    by_lr = {r.data.params["optimizer.lr"]: r.info.status for r in children}
    assert by_lr == {"0.001": "FINISHED", "1000000.0": "FAILED"}
    states = sorted(_task_states(slurm).values())
    assert ("COMPLETED", "0:0") in states and ("FAILED", "1:0") in states


def test_a_killed_task_is_recorded_and_resume_submits_only_what_is_left(slurm, output_dir):
    sweep = [
        "trainer.max_epochs=2,150,3",  # the 150-epoch job is still training when it is killed
        "callbacks.early_stopping.patience=150",
        "hydra.launcher.array_parallelism=1",
    ]
    process = _sweep(sweep, output_dir, slurm, wait=False)
    environment = dict(os.environ, SLURM_CONF=slurm)
    deadline, victim = time.time() + 300, None
    while victim is None:  # the long job (task 1) is running: kill it
        assert time.time() < deadline and process.poll() is None
        running = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env=environment, capture_output=True, text=True
        ).stdout.split()
        victim = next((task for task in running if task.endswith("_1")), None)
        time.sleep(0.2)
    time.sleep(3)
    subprocess.run(["scancel", victim], env=environment, check=True)  # SIGTERM, then SIGKILL
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1, output[-3000:]
    assert "ended without a result" in output
    status, resumed = _sweep([*sweep, "+resume=true"], output_dir, slurm)
    assert status == 0, resumed[-3000:]
    assert "resume: 2 of 3 jobs already FINISHED, not submitted" in resumed
    assert resumed.count("\t#") == 1 and "\t#1 : " in resumed  # only the killed job was queued
    children = child_runs(output_dir)
    finished = sorted(r.data.params["trainer.max_epochs"] for r in children if r.info.status == "FINISHED")
    assert finished == ["150", "2", "3"]
    assert "RUNNING" not in {r.info.status for r in all_runs(store_uri(output_dir))}
