"""A sweep against a real ``mlflow server`` on 127.0.0.1, and a parallel (joblib) sweep."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import all_runs, run_cli, store_uri

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """One server for the module's tests: each finds its own runs (by parent run, or by start time)."""
    tmp_path = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"MLFLOW_DISABLE_TELEMETRY": "true", "PATH": str(Path(sys.executable).parent)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert server.poll() is None, "mlflow server exited"
        assert time.time() < deadline, "mlflow server did not become healthy"
        time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def _rest(url: str, path: str, body: dict | None = None) -> dict:
    """GET without a body, POST with one (MLflow's REST API)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_sweep_against_a_tracking_server(mlflow_server, output_dir):
    done = run_cli(
        ["-m", "regularizer=none,l2", "dropout=0,0.3", "trainer.max_epochs=2"],
        output_dir,
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert done.returncode == 0, done.stderr
    assert not (output_dir / "mlflow.db").exists()
    experiment = _rest(mlflow_server, "experiments/get-by-name?experiment_name=reglab")
    experiment_id = experiment["experiment"]["experiment_id"]
    body = {"experiment_ids": [experiment_id], "max_results": 100}
    runs = _rest(mlflow_server, "runs/search", body)["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags, strict=True) if t.get("reglab.kind") == "sweep"]
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
    parent_id = parents[0]["info"]["run_id"]
    children = [r for r, t in zip(runs, tags, strict=True) if t.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 4
    for child in children:
        assert child["info"]["status"] == "FINISHED"
        params = {p["key"]: p["value"] for p in child["data"]["params"]}
        metrics = {m["key"] for m in child["data"]["metrics"]}
        assert params["choice.regularizer"] in {"none", "l2"} and "dropout" in params
        assert {"test/acc", "val/loss", "fit/best_epoch"} <= metrics
    artifacts = _rest(mlflow_server, f"artifacts/list?run_id={children[0]['info']['run_id']}")
    assert "config.yaml" in {f["path"] for f in artifacts.get("files", [])}


def test_parallel_joblib_sweep_loses_no_run(cli_joblib_sweep):
    done, output_dir = cli_joblib_sweep  # 2 at a time: regularizer=none,l1,l2,elastic
    assert done.returncode == 0, done.stderr
    runs = all_runs(store_uri(output_dir))
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.params["choice.regularizer"] for r in children} == {"none", "l1", "l2", "elastic"}


def _artifact_texts(client, run_id: str, path: str | None = None):
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            yield from _artifact_texts(client, run_id, item.path)
        else:
            local = client.download_artifacts(run_id, item.path)
            yield item.path, Path(local).read_bytes().decode("utf-8", errors="replace")


def test_credentials_in_the_tracking_uri_are_never_written_or_logged(mlflow_server, output_dir):
    """A sweep (URI from the environment) and a single run (URI in the config) through a URI
    with a password: the password is in no file reglab or Hydra wrote, no console line, no
    param, tag or artifact; the runs record the masked URI."""
    started_ms = int(time.time() * 1000)  # the server may hold the runs of the module's other tests
    secret = "s3cr3tPW"
    with_password = mlflow_server.replace("http://", f"http://alice:{secret}@")
    sweep = run_cli(
        ["-m", "regularizer=none,l2", "trainer.max_epochs=2", "model.hidden=[8]"],
        output_dir,
        env={"MLFLOW_TRACKING_URI": with_password},
    )
    single = run_cli(
        ["trainer.max_epochs=2", "model.hidden=[8]", f"logger.tracking_uri={with_password}"], output_dir
    )
    assert sweep.returncode == 0 and single.returncode == 0, sweep.stderr[-2000:] + single.stderr[-2000:]
    for done in (sweep, single):
        assert secret not in done.stdout + done.stderr
    written = [p for p in output_dir.rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in written) and any(p.name == "train.log" for p in written)
    leaking = [str(p) for p in written if secret.encode() in p.read_bytes()]
    assert leaking == []
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("reglab").experiment_id])
    runs = [r for r in runs if r.info.start_time >= started_ms]
    assert len(runs) == 4  # parent + 2 jobs + the single run
    for run in runs:
        recorded = [*run.data.params.values(), *run.data.tags.values(), run.info.run_name]
        assert not [v for v in recorded if secret in v]
        assert not [path for path, text in _artifact_texts(client, run.info.run_id) if secret in text]
    single_run = next(r for r in runs if "logger.tracking_uri" in r.data.tags.get("reglab.overrides", ""))
    assert single_run.data.params["logger.tracking_uri"] == mlflow_server.replace(
        "http://", "http://alice:***@"
    )
