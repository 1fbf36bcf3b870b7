"""Long work is never silent: the Python API prints the CLI's per-epoch lines and writes a
train.log; a sweep's jobs say how many are done and how long is left."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import ROOT

from reglab.sweeps import outcomes
from reglab.sweeps.job import progress_line
from reglab.sweeps.manifest import SweepManifest

SCRIPT = (
    "import reglab; reglab.run(['trainer.max_epochs=3', 'model.hidden=[8]', 'logger=none', "
    "'paths.output_dir={out}'], verbose={verbose})"
)


def _api(tmp_path, verbose: bool) -> subprocess.CompletedProcess:
    out = tmp_path / f"out-{verbose}"
    code = SCRIPT.format(out=out, verbose=verbose)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_api_prints_one_line_per_epoch_and_writes_train_log(tmp_path):
    shown, quiet = _api(tmp_path, True), _api(tmp_path, False)
    assert shown.returncode == 0 and quiet.returncode == 0, shown.stderr + quiet.stderr
    epochs = [line for line in shown.stderr.splitlines() if "epoch " in line and "/3" in line]
    assert [line.split("epoch ")[1].split()[0] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "epoch " not in quiet.stderr
    for out in (tmp_path / "out-True", tmp_path / "out-False"):
        (log_file,) = out.glob("api/*/*/train.log")
        assert log_file.read_text().count("[reglab][INFO] - epoch ") == 3


def test_a_sweep_job_says_how_many_are_done_and_how_long_is_left(tmp_path):
    manifest = SweepManifest("s1", str(tmp_path), size=4, started=time.time() - 30, signature="x")
    assert progress_line(0, manifest).endswith("0 done (0 failed), 00:00:30 elapsed, estimating")
    outcomes.write_outcome(tmp_path / "0", job=0, status="FINISHED")
    outcomes.write_outcome(tmp_path / "1", job=1, status="FAILED")
    line = progress_line(2, manifest)
    # 2 jobs in 30 s: 15 s a job, 2 jobs left
    assert line.startswith("job 3/4 of sweep s1: 2 done (1 failed), 00:00:30 elapsed, ~00:00:3")
