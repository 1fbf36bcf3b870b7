"""Where a user looks: the console's last lines of a run and of a sweep, the run names in
the MLflow UI, and the sweep's Answer on its parent run (description and ``report.html``)."""

from __future__ import annotations

import html
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, all_runs, child_runs, store_uri

import reglab
from reglab import report, tracking
from reglab.pipeline import run_name
from reglab.report.publish import NOTE_CHARS, NOTE_TAG, answer_lines, note, publish_to_parent

SUMMARY = """# Ablation report: sweep s

- runs: 4

## Answer

- regularizer=l2 vs none: better test/acc in 1, worse in 0
- dropout=0.3 vs 0: better test/acc in 0, worse in 0

(paired over seeds)

## Configurations

- not an answer
"""


def test_answer_lines_are_the_answer_section_up_to_the_next_heading():
    assert answer_lines(SUMMARY) == [
        "- regularizer=l2 vs none: better test/acc in 1, worse in 0",
        "- dropout=0.3 vs 0: better test/acc in 0, worse in 0",
        "(paired over seeds)",
    ]
    assert answer_lines(SUMMARY.replace("## Answer", "## Not the answer")) == []
    assert answer_lines("## Answer\n\n- last section\n") == ["- last section"]


def test_run_names_put_group_choices_first_and_paths_by_their_file_name():
    groups = {"data", "regularizer", "model", "experiment"}
    overrides = [
        "data.path=/very/long/dir/file.csv",
        "dropout=0.3",
        "regularizer=l1",
        "data=csv",
        "paths.output_dir=/tmp/out",
        "hydra/launcher=stacked",
        "logger.tracking_uri=sqlite:////tmp/out/mlflow.db",
        "+resume=true",
        "model.hidden=[16,16]",
    ]
    assert run_name(overrides, groups) == (
        "regularizer=l1,data=csv,data.path=file.csv,dropout=0.3,model.hidden=[16,16]"
    )
    assert run_name(["+data.path='my dir/t.csv'", "seed=1"]) == "+data.path=t.csv,seed=1"
    assert run_name(["paths.output_dir=/x"]) == "default"


def test_a_long_answer_is_cut_at_a_line_to_fit_mlflows_tag_limit():
    long = "## Answer\n\n" + "\n".join(f"- level {i} vs none: " + "x" * 200 for i in range(60))
    written = note(long, Path("/r"))
    assert len(written) <= NOTE_CHARS and "- level 0 vs none: " in written and "- level 59" not in written
    assert written.startswith("**Answer** of this sweep (the whole report: `report/report.html` in Artifacts")
    kept = [line for line in written.splitlines() if line.startswith("- level")]
    assert kept and all(line.endswith("x" * 200) for line in kept)  # whole lines only
    assert "(the rest of the Answer is in the report)" in written


# --------------------------------------------------------------------------- the parent run


@pytest.fixture
def hand_sweep(tmp_path, monkeypatch):
    """``(uri, parent run id, written Report)``: a sweep regularizer none/l2 x 3 seeds whose
    runs are logged by hand into a real SQLite store (no training), and its real report."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = tracking.ensure_experiment(uri, "reglab", str(tmp_path / "mlartifacts"))
    parent = tracking.TrackedRun(uri, experiment_id)
    parent.start("sweep-h", {"reglab.kind": "sweep", "reglab.sweep_id": "h"})
    for regularizer, shift in (("none", 0.0), ("l2", 0.1)):
        for seed in (1, 2, 3):
            run = tracking.TrackedRun(uri, experiment_id)
            run.start(f"{regularizer} {seed}", {"mlflow.parentRunId": parent.run_id, "reglab.sweep_id": "h"})
            run.set_tags({"reglab.config_hash": f"{regularizer}{seed}"})
            run.log_params({"choice.regularizer": regularizer, "seed": str(seed), "data.seed": str(seed)})
            run.log_metric_rows([("val/loss", 1.0 / (epoch + seed), epoch) for epoch in range(3)])
            run.log_metrics({"test/acc": 0.5 + shift + seed / 1000})
            run.finish()
    written = report.write_report(uri, "h", output_dir=tmp_path)
    return uri, parent.run_id, written


def test_the_answer_is_the_parent_runs_description_and_report_html_its_artifact(hand_sweep, tmp_path):
    uri, parent_run_id, written = hand_sweep
    answer = answer_lines(written.markdown)
    assert answer and "l2" in answer[0]
    client = report.open_client(uri)
    publish_to_parent(client, parent_run_id, written.directory, written.markdown, written.files)

    note = client.get_run(parent_run_id).data.tags[NOTE_TAG]
    where = f"`report/report.html` in Artifacts, and `{written.directory}`"
    first = f"**Answer** of this sweep (the whole report: {where})"
    assert note.splitlines()[:2] == [first, ""] and all(line in note for line in answer)
    assert "report/report.html" in [a.path for a in client.list_artifacts(parent_run_id, "report")]
    logged = Path(client.download_artifacts(parent_run_id, "report/report.html", str(tmp_path)))
    page = logged.read_text()
    assert page == (written.directory / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert all(re.sub(r"[`*]", "", line).removeprefix("- ") in text for line in answer)
    figures = [f for f in written.files if f.endswith(".png")]
    assert len(figures) >= 2
    embedded = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(embedded) == sorted(figures)
    assert not re.search(r'src="[^"]*\.png"', page)  # no figure left as a file reference


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_the_ui_shows_the_answer_on_the_sweeps_run_page(hand_sweep, tmp_path):
    uri, parent_run_id, written = hand_sweep
    publish_to_parent(
        report.open_client(uri), parent_run_id, written.directory, written.markdown, written.files
    )
    picture = tmp_path / "answer.png"
    script = [sys.executable, "scripts/mlflow_ui_screenshot.py", "--sweep-answer", "--out", str(picture)]
    shot = subprocess.run(
        [*script, "--store", str(tracking.sqlite_path(uri))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert shot.returncode == 0, shot.stdout + shot.stderr
    assert (
        f"runs/{parent_run_id}" in shot.stdout
        and "the sweep's parent run page shows its Answer" in shot.stdout
    )
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- one run


def test_reglab_run_ends_with_its_headline_and_names_its_run_without_the_data_path(
    output_dir, tmp_path, caplog
):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    frame["y"] = 2 * frame.a - frame.b + 0.1 * rng.normal(size=150)
    table = tmp_path / "a" / "deep" / "folder" / "table.csv"
    table.parent.mkdir(parents=True)
    frame.to_csv(table, index=False)
    overrides = [f"data.path={table}", "data=csv", "data.target=y", "regularizer=l1", "model.hidden=[16]"]
    with caplog.at_level(logging.INFO, logger="reglab"):
        result = reglab.run([*overrides, "trainer.max_epochs=2", f"paths.output_dir={output_dir}"])

    last = [r.getMessage() for r in caplog.records if r.name.startswith("reglab")][-1]
    metrics = result.metrics
    lines = last.splitlines()
    assert lines[0] == (
        f"done: test/r2 {metrics['test/r2']:.4g}, test/mse {metrics['test/mse']:.4g} "
        f"(best epoch {int(metrics['fit/best_epoch']) + 1} of 2 trained)"
    )
    assert lines[1:] == [
        f"  run folder: {result.run_dir}",
        f"  MLflow run: {result.run_id} (experiment reglab)",
        f"  browse: mlflow ui --backend-store-uri {store_uri(output_dir.resolve())}",
    ]
    assert last in (result.run_dir / "train.log").read_text()
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.run_id == result.run_id
    assert run.info.run_name == (
        "data=csv,regularizer=l1,data.path=table.csv,data.target=y,model.hidden=[16],trainer.max_epochs=2"
    )


@pytest.mark.slow
def test_the_cli_ends_a_run_with_the_test_metric_its_folder_and_the_ui_command(cli_single_run):
    done, output_dir = cli_single_run  # python train.py regularizer=elastic dropout=0.3 trainer.max_epochs=3
    assert done.returncode == 0, done.stderr[-2000:]
    tail = done.stdout.strip().splitlines()[-4:]
    (run,) = all_runs(store_uri(output_dir))
    accuracy = run.data.metrics["test/acc"]
    shown = re.escape(f"{accuracy:.4g}")
    headline = rf"\[.*\]\[reglab\]\[INFO\] - done: test/acc {shown} \(best epoch \d of 3 trained\)"
    assert re.fullmatch(headline, tail[0]), tail[0]
    folder = Path(tail[1].removeprefix("  run folder: "))
    assert folder.parent.parent == output_dir / "runs" and (folder / "train.log").is_file()
    assert tail[2:] == [
        f"  MLflow run: {run.info.run_id} (experiment reglab)",
        f"  browse: mlflow ui --backend-store-uri {store_uri(output_dir)}",
    ]
    assert "final metrics" not in done.stdout  # the headline, not a raw dict of every metric


# --------------------------------------------------------------------------- a sweep


@pytest.mark.slow
def test_the_cli_ends_a_sweep_with_its_counts_answer_report_and_ui_command(cli_sweep):
    done, output_dir = cli_sweep  # python train.py -m regularizer=none,l2 seed=0,1 model.hidden=[16] ...
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    counts = next(i for i, line in enumerate(lines) if "sweep done in" in line)
    assert lines[counts].endswith(": 4 jobs, 4 finished, 0 skipped, 0 failed")
    (parent,) = [r for r in all_runs(store_uri(output_dir)) if r.data.tags.get("reglab.kind") == "sweep"]
    sweep_id = parent.data.tags["reglab.sweep_id"]
    folder = output_dir / "reports" / sweep_id
    answer = answer_lines((folder / "summary.md").read_text())
    assert answer and any("l2" in line for line in answer)
    assert lines[counts + 1].endswith("] Answer:")
    assert lines[counts + 2 :] == [
        *(f"  {line}" for line in answer),
        f"report: {folder}",
        f"MLflow parent run: {parent.info.run_id} (sweep-{sweep_id})",
        f"browse: mlflow ui --backend-store-uri {store_uri(output_dir)}",
    ]
    assert len(child_runs(output_dir)) == 4
    assert sorted(r.info.run_name for r in child_runs(output_dir)) == [
        f"regularizer={r},seed={s},model.hidden=[16],trainer.max_epochs=2"
        for r in ("l2", "none")
        for s in (0, 1)
    ]
