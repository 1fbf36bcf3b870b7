"""Top-level ablation knobs reach the model or are refused; constructor errors reach the
user as one line through Hydra's instantiate; sweep outcome tables survive any message."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import all_runs, run_cli, run_cli_counting_imports, store_uri

import reglab
from reglab.config import compose, sync_knobs, validate
from reglab.errors import ConfigError
from reglab.sweeps.outcomes import markdown, markdown_cell

QUICK = ["trainer.max_epochs=2", "model.hidden=[16]"]
BAD_CSV = Path(tempfile.mkdtemp()) / "bad.csv"
BAD_CSV.write_text("a,b,label\n1,2,x\n3,,y\n")


@pytest.mark.parametrize("knob", ["dropout=0.5", "batchnorm=true"])
def test_a_knob_the_model_cannot_use_is_refused_naming_it(knob):
    name = knob.split("=")[0]
    with pytest.raises(
        ConfigError, match=rf"^{name}=.* is not allowed with reglab\.models\.LinearModel: it has no {name}"
    ):
        validate(compose(["model=linear", knob]))


def test_neutral_knobs_are_accepted_by_every_model_and_build_no_dropout_or_batch_norm():
    from torch import nn

    from reglab.build import build_components
    from reglab.dropout import SeededDropout

    for model, data in (("linear", "digits"), ("mlp", "digits"), ("cnn1d", "mnist1d"), ("convnet", "digits")):
        cfg = compose([f"model={model}", f"data={data}", "dropout=0", "batchnorm=false"])
        validate(cfg)
        sync_knobs(cfg)
        built = build_components(cfg).model
        layers = [
            m for m in built.modules() if isinstance(m, SeededDropout | nn.modules.batchnorm._BatchNorm)
        ]
        assert layers == [], (model, layers)


@pytest.mark.parametrize(
    ("knob", "value", "layer"), [("dropout", 0.3, "SeededDropout"), ("batchnorm", True, "BatchNorm")]
)
def test_the_models_named_as_taking_a_knob_are_those_that_build_its_layers(knob, value, layer):
    from reglab.build import build_components
    from reglab.config import find_config_dir
    from reglab.knobs import models_taking

    options = sorted(p.stem for p in (find_config_dir() / "model").glob("*.yaml"))
    builds_layer = []
    for model in options:
        data = "mnist1d" if model == "cnn1d" else "digits"
        try:
            cfg = compose([f"model={model}", f"data={data}", f"{knob}={value}"])
        except ConfigError as error:
            assert f"models with {knob}: {', '.join(models_taking(knob, find_config_dir()))}" in str(error)
            continue
        if any(layer in type(m).__name__ for m in build_components(cfg).model.modules()):
            builds_layer.append(model)
    assert builds_layer == models_taking(knob, find_config_dir())
    assert "linear" not in builds_layer and "mlp" in builds_layer


def test_linear_with_dropout_fails_on_the_command_line_in_one_line_and_writes_nothing(output_dir):
    result = run_cli(["model=linear", "dropout=0.5"], output_dir)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dropout=0.5" in lines[0] and "LinearModel" in lines[0]
    assert list(output_dir.iterdir()) == []  # no store, no run folder


def test_a_knob_set_on_the_model_is_the_value_logged_and_used(output_dir):
    result = reglab.run([*QUICK, "model.dropout=0.3", f"paths.output_dir={output_dir}"])
    assert result.config.dropout == 0.3 and result.config.model.dropout == 0.3
    assert [float(m.p) for m in result.model.modules() if type(m).__name__ == "SeededDropout"] == [
        pytest.approx(0.3)
    ]
    (run,) = all_runs(store_uri(output_dir))
    assert run.data.params["dropout"] == "0.3" and run.data.params["model.dropout"] == "0.3"


def test_sync_makes_equal_configs_equal_whichever_key_was_set():
    by_model, by_knob = compose(["model.dropout=0.3"]), compose(["dropout=0.3"])
    sync_knobs(by_model)
    sync_knobs(by_knob)
    assert by_model == by_knob


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["data=synthetic", "data.correlation={kind:circle}"],
            "data.correlation.kind='circle' is not allowed",
        ),
        (["+model.foo=1"], "model: reglab.models.MLP does not accept these arguments"),
        (["regularizer.strength=inf"], "regularizer.strength=inf is not allowed: must be a finite number"),
        (["model.hidden=[]"], "model.hidden=[] is not allowed"),
        (["data=csv", "data.target=label", f"data.path={BAD_CSV}"], "missing values (NaN) in column(s) 'b'"),
    ],
)
def test_constructor_and_instantiate_errors_are_one_line_with_status_2(output_dir, overrides, expected):
    result, imported = run_cli_counting_imports(overrides, output_dir)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert list(output_dir.iterdir()) == []  # no store, no job folder
    assert "lightning" not in imported and "mlflow" not in imported  # built before they load


def test_job_table_cells_survive_pipes_and_line_breaks():
    reason = "DataError: bad | value\nsecond line"
    assert markdown_cell(reason) == "DataError: bad \\| value<br>second line"
    table = markdown(pd.DataFrame([{"job": 0, "reason": reason}, {"job": 1, "reason": None}]))
    rows = table.strip().splitlines()
    assert len(rows) == 4 and all(len(re.findall(r"(?<!\\)\|", row)) == 3 for row in rows)
