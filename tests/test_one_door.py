"""One set of rules for every job: a job's config passes one door, once (reglab.config.check_job),
every job of a sweep is checked before the first one trains on both in-process launchers, and
no module of reglab imports from a layer above its own."""

from __future__ import annotations

import ast
import logging
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import all_runs, run_cli, store_uri
from omegaconf import OmegaConf

from reglab import config

SRC = Path(__file__).resolve().parents[1] / "src"
QUICK = ["trainer.max_epochs=1", "model.hidden=[8]"]


# -- a bad callback value stops the sweep before anything trains --------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_bad_callback_value_stops_the_sweep_before_anything_trains(launcher, output_dir):
    done = run_cli(
        [
            "-m",
            "regularizer=l1,l2",
            "callbacks.divergence.max_ratio=0.5",
            *QUICK,
            f"hydra/launcher={launcher}",
        ],
        output_dir,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("reglab: error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]]
    assert errors[0] == (
        "reglab: error: callbacks.divergence.max_ratio=0.5 is not allowed: must be a number > 1"
    )
    runs = all_runs(store_uri(output_dir))
    assert [(r.data.tags.get("reglab.kind"), r.info.status) for r in runs] == [("sweep", "FAILED")]
    assert "callbacks.divergence.max_ratio=0.5" in runs[0].data.tags["reglab.failure_reason"]
    assert not list(output_dir.glob("multiruns/*/*/*/outcome.json"))  # no job ran


@pytest.mark.slow
def test_a_bad_callback_value_stops_a_single_run_in_one_line(output_dir):
    done = run_cli(["callbacks.divergence.max_ratio=0.5", *QUICK], output_dir)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        "reglab: error: callbacks.divergence.max_ratio=0.5 is not allowed: must be a number > 1"
    ]
    assert list(output_dir.iterdir()) == []  # no store, no run folder


# -- validate once per job ------------------------------------------------------------------------
@pytest.fixture
def validated(monkeypatch) -> Counter:
    """The seed of every config :func:`reglab.config.validate` checks, counted."""
    seen: Counter = Counter()
    real = config.validate

    def counting(cfg):
        seen[OmegaConf.select(cfg, "seed")] += 1
        return real(cfg)

    monkeypatch.setattr(config, "validate", counting)
    return seen


def train_py(args: list[str], monkeypatch) -> None:
    """``python train.py ARGS`` in this process (Hydra's own main, launchers and ``run_job``),
    then Hydra's global state and the logging it configured put back."""
    from hydra.core.global_hydra import GlobalHydra

    from reglab import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    try:
        cli.main()
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level


def test_a_single_run_is_validated_once(validated, output_dir, monkeypatch):
    import reglab

    job = [*QUICK, "logger=none", "seed=3", f"paths.output_dir={output_dir}"]
    reglab.run(job, verbose=False)
    assert validated == {3: 1}
    train_py([*job, "seed=4"], monkeypatch)
    assert validated == {3: 1, 4: 1}


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_each_job_of_a_sweep_is_validated_once(launcher, validated, output_dir, monkeypatch):
    sweep = ["-m", "seed=0,1", *QUICK, "logger=none", f"hydra/launcher={launcher}"]
    train_py([*sweep, f"paths.output_dir={output_dir}"], monkeypatch)
    assert validated == {0: 1, 1: 1}
    assert len(list(output_dir.glob("multiruns/*/*/*/fit_record.json"))) == 2  # both trained


# -- layers ---------------------------------------------------------------------------------------
# Low to high: a module may import from its own layer and those below. "config -> objects ->
# Trainer -> MLflow -> report" (DESIGN.md) read as imports: entry points and the Hydra callback
# on top, the sweep and stacked engines and the report under them, one job (the pipeline) under
# those, then training, the objects and stores a config builds, the config, and what all use.
# A module's layer is that of its longest listed name (``reglab.stacked`` for ``.stacked.fit``).
LAYERS = {
    **dict.fromkeys(["reglab.errors", "reglab.checks", "reglab.timing", "reglab.conventions"], 0),
    **dict.fromkeys(["reglab.entry", "reglab.tracking.redaction", "reglab.knobs"], 0),
    **dict.fromkeys(
        ["reglab.config", "reglab.compose_once", "reglab.overrides", "reglab.studies.presets"], 1
    ),
    **dict.fromkeys(["reglab.data", "reglab.models", "reglab.regularizers", "reglab.dropout"], 2),
    **dict.fromkeys(["reglab.best_weights", "reglab.divergence", "reglab.progress", "reglab.recovery"], 2),
    **dict.fromkeys(["reglab.tracking", "reglab.sweeps.manifest", "reglab.sweeps.outcomes"], 2),
    "reglab.sweeps.resume": 2,
    **dict.fromkeys(["reglab.module", "reglab.build", "reglab.fit"], 3),
    **dict.fromkeys(["reglab.stacked.optim", "reglab.stacked.batches", "reglab.stacked.members"], 3),
    **dict.fromkeys(["reglab.stacked.module", "reglab.stacked.callbacks", "reglab.stacked.plan"], 3),
    **dict.fromkeys(["reglab.pipeline", "reglab.sweeps.job"], 4),
    **dict.fromkeys(["reglab.stacked", "reglab.sweeps", "reglab.report", "reglab.studies"], 5),
    **dict.fromkeys(["reglab", "reglab.cli", "reglab.search", "reglab.grid", "reglab.sweeps.callbacks"], 6),
}
# entry.import_run_modules imports the training modules only to freeze their objects at start-up
# (reglab.entry); it uses nothing of them.
UPWARD_ALLOWED = {("reglab.entry", "reglab.module"), ("reglab.entry", "reglab.pipeline")}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "reglab").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0 if len(parts) == 1 else 1, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def imported(path: Path, known: set[str]) -> set[str]:
    """The reglab modules ``path`` imports, at its top and inside its functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:  # ``from reglab import tracking`` imports reglab.tracking
                name = f"{node.module}.{alias.name}"
                names.add(name if name in known else node.module)
    return {n for n in names if n == "reglab" or n.startswith("reglab.")}


def test_no_module_imports_from_a_layer_above_its_own():
    found = modules()
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, path in found.items()
        for target in sorted(imported(path, set(found)))
        if layer(target) > layer(module) and (module, target) not in UPWARD_ALLOWED
    ]
    assert upward == []


def test_the_layering_test_sees_an_upward_import(tmp_path):
    module = tmp_path / "config.py"
    module.write_text(
        "def f():\n    from reglab.sweeps import compose_once\n    from reglab import pipeline\n"
    )
    assert imported(module, {"reglab.pipeline"}) == {"reglab.sweeps", "reglab.pipeline"}
    assert layer("reglab.sweeps.checked") > layer("reglab.config") < layer("reglab.pipeline")
