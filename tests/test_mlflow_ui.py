"""The MLflow UI, in a real headless browser, opens reglab's experiment on its runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_the_ui_lists_the_runs_of_a_sweep(cli_sweep, tmp_path):
    done, output_dir = cli_sweep  # python train.py -m regularizer=none,l2 seed=0,1 ...: 4 jobs
    assert done.returncode == 0, done.stderr[-2000:]
    picture = tmp_path / "ui.png"
    shot = subprocess.run(
        [
            sys.executable,
            "scripts/mlflow_ui_screenshot.py",
            "--store",
            str(output_dir / "mlflow.db"),
            "--out",
            str(picture),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert shot.returncode == 0, shot.stdout + shot.stderr
    assert "the runs page lists 5 runs" in shot.stdout  # the parent and its four jobs
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
