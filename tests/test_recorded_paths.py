"""What a run records does not reveal this machine's directory layout."""

from __future__ import annotations

from conftest import ROOT, all_runs, store_uri

import reglab
from reglab.tracking import portable_paths


def test_paths_inside_the_project_are_recorded_relative_to_it():
    config = {
        "paths": {"root_dir": str(ROOT), "output_dir": str(ROOT / "outputs")},
        "data": {"root": str(ROOT / "data"), "files": [str(ROOT / "a.csv"), "/elsewhere/b.csv"]},
        "note": "not/a/path",
        "n": 3,
    }
    assert portable_paths(config, ROOT) == {
        "paths": {"root_dir": ".", "output_dir": "outputs"},
        "data": {"root": "data", "files": ["a.csv", "/elsewhere/b.csv"]},
        "note": "not/a/path",
        "n": 3,
    }


def test_a_run_records_no_absolute_project_path_and_no_paths_params(output_dir):
    result = reglab.run(["trainer.max_epochs=1", "model.hidden=[8]", f"paths.output_dir={output_dir}"])
    (run,) = all_runs(store_uri(output_dir))
    assert not [k for k in run.data.params if k.startswith("paths.")]
    recorded = [*run.data.params.values(), *run.data.tags.values()]
    from mlflow import MlflowClient

    client = MlflowClient(store_uri(output_dir))
    recorded.append(
        (output_dir / "x")
        .parent.joinpath(client.download_artifacts(result.run_id, "config.yaml", str(output_dir)))
        .read_text()
    )
    assert not [text for text in recorded if str(ROOT) in text]
    assert "root_dir: ." in recorded[-1]
