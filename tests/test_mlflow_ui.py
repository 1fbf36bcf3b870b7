"""The MLflow UI, in a real headless browser, opens reglab's experiment on its runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_the_ui_lists_the_runs_of_a_sweep(output_dir, tmp_path):
    done = run_cli(["-m", "regularizer=none,l2", "trainer.max_epochs=2", "model.hidden=[8]"], output_dir)
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
    assert "the runs page lists 3 runs" in shot.stdout  # the parent and its two jobs
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
