"""Start the MLflow UI on a free port on 127.0.0.1, wait until it answers, and take a
screenshot of reglab's experiment page (or, with ``--sweep-answer``, of the latest sweep's
parent run, whose description is the report's Answer) with headless Chromium.

    python scripts/mlflow_ui_screenshot.py [--store outputs/mlflow.db] [--out docs/mlflow-ui.png]
    python scripts/mlflow_ui_screenshot.py --sweep-answer [--out docs/mlflow-ui-answer.png]

Prints how long the UI took to accept connections after it was started. Needs Debian's
``chromium`` (``apt-get install chromium``) and a store with runs (``python train.py``; a
sweep, ``python train.py -m ...``, for ``--sweep-answer``).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWER_PAGE_HEIGHT = 1500  # pixels: a sweep's run page down to its description
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_ui(store: Path, port: int, workers: int) -> subprocess.Popen:
    """``mlflow ui`` on the store, bound to 127.0.0.1 only."""
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow),
        "ui",
        "--backend-store-uri",
        f"sqlite:///{store.resolve()}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_up(url: str, timeout: float) -> float:
    """Seconds until ``url`` answers 200; raises ``TimeoutError`` after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"the MLflow UI did not answer at {url} within {timeout:.0f} s")


def experiment_id(base: str, name: str) -> str:
    query = urllib.parse.urlencode({"experiment_name": name})
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)["experiment"]["experiment_id"]


def latest_sweep(base: str, experiment: str) -> tuple[str, str]:
    """``(run id, description)`` of the experiment's latest sweep parent run (tag
    ``reglab.kind = sweep``); the description is its tag ``mlflow.note.content`` ("" if none)."""
    query = {
        "experiment_ids": [experiment],
        "filter": "tags.`reglab.kind` = 'sweep'",
        "order_by": ["attributes.start_time DESC"],
        "max_results": 1,
    }
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/runs/search",
        data=json.dumps(query).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        runs = json.load(reply).get("runs", [])
    if not runs:
        raise LookupError("the experiment has no sweep (run python train.py -m ... first)")
    tags = {t["key"]: t["value"] for t in runs[0]["data"].get("tags", [])}
    return runs[0]["info"]["run_id"], tags.get("mlflow.note.content", "")


def shows_answer(dom: str, description: str) -> bool:
    """Whether the page shows the description's first Answer line (rendered: markdown marks
    and HTML tags aside)."""
    first = next((line for line in description.splitlines() if line.startswith("- ")), None)
    text = html.unescape(re.sub(r"<[^>]+>", "", dom))
    return first is not None and re.sub(r"[`*]", "", first[2:])[:60] in text


def chromium(url: str, *arguments: str, budget_ms: int = 20_000, height: int = 900) -> str:
    """Headless Chromium on ``url`` with ``arguments``, the page's scripts given
    ``budget_ms`` of virtual time; returns what it printed (the DOM for ``--dump-dom``)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        window = [f"--window-size=1600,{height}", f"--virtual-time-budget={budget_ms}"]
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *window, *arguments, url]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout


def listed_runs(dom: str) -> int | None:
    """The runs page's "N matching runs" count; ``None`` when the page is not the runs list."""
    found = re.search(r"(\d+)(?:\s|<[^>]*>)*matching runs", dom)
    return int(found.group(1)) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "outputs" / "mlflow.db")
    parser.add_argument("--experiment", default="reglab")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default docs/mlflow-ui.png (--sweep-answer: docs/mlflow-ui-answer.png)",
    )
    parser.add_argument(
        "--sweep-answer",
        action="store_true",
        help="the latest sweep's parent run page, whose description is its report's Answer",
    )
    parser.add_argument("--workers", type=int, default=1, help="mlflow ui --workers (its default is 4)")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    args.out = args.out or ROOT / "docs" / ("mlflow-ui-answer.png" if args.sweep_answer else "mlflow-ui.png")
    if not args.store.is_file():
        message = f"no store at {args.store} (run python train.py first)"
        print(f"mlflow_ui_screenshot: error: {message}", file=sys.stderr)
        return 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_ui(args.store, port, args.workers)
    try:
        waited = wait_until_up(base + "/health", args.timeout)
        print(f"the MLflow UI answered {waited:.1f} s after it was started (--workers {args.workers})")
        experiment = experiment_id(base, args.experiment)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.sweep_answer:
            return _answer_page(base, experiment, args.out)
        page = f"{base}/#/experiments/{experiment}/runs?workflowType=machine_learning"
        chromium(page, f"--screenshot={args.out.resolve()}")
        print(f"screenshot of {page} -> {args.out}")
        runs = listed_runs(chromium(page, "--dump-dom"))
        if runs is None:
            print("mlflow_ui_screenshot: error: the page is not the experiment's runs list", file=sys.stderr)
            return 1
        print(f"the runs page lists {runs} runs")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


def _answer_page(base: str, experiment: str, out: Path) -> int:
    """Screenshot the latest sweep's parent run page; 1 unless it shows the sweep's Answer."""
    run_id, description = latest_sweep(base, experiment)
    if not description:
        message = f"sweep run {run_id} has no description (its report writes it: python scripts/report.py)"
        print(f"mlflow_ui_screenshot: error: {message}", file=sys.stderr)
        return 1
    page = f"{base}/#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning"
    # the description comes after the run's details and its list of child runs
    chromium(page, f"--screenshot={out.resolve()}", height=ANSWER_PAGE_HEIGHT)
    print(f"screenshot of {page} -> {out}")
    if not shows_answer(chromium(page, "--dump-dom", height=ANSWER_PAGE_HEIGHT), description):
        print("mlflow_ui_screenshot: error: the run page does not show the sweep's Answer", file=sys.stderr)
        return 1
    print("the sweep's parent run page shows its Answer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
