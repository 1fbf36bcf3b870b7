"""scripts/lasso_path.py end to end on a short path."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import ROOT, all_runs, store_uri

pytestmark = pytest.mark.slow


def test_lasso_path_script_writes_the_figure_and_logs_runs(output_dir):
    spec = importlib.util.spec_from_file_location("lasso_path", ROOT / "scripts" / "lasso_path.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    png = script.main(
        ["--points", "3", "--min-ratio", "0.03", "--epochs", "1500", f"paths.output_dir={output_dir}"]
    )
    assert png == output_dir / "lasso_path.png" and png.stat().st_size > 10_000
    runs = all_runs(store_uri(output_dir))
    (parent,) = [r for r in runs if r.info.run_name == "lasso_path"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert parent.data.metrics["path/max_relative_coef_difference"] < 1e-2
    from mlflow import MlflowClient

    artifacts = MlflowClient(tracking_uri=store_uri(output_dir)).list_artifacts(parent.info.run_id)
    assert [a.path for a in artifacts] == ["lasso_path.png"]
