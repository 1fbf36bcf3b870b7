"""scripts/zou_hastie.py: reglab's tuned lasso / elastic net / ridge against scikit-learn on the
same replicates of Zou & Hastie's example 1 (a short run; the full table is in docs/)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def load_script():
    spec = importlib.util.spec_from_file_location("zou_hastie", ROOT / "scripts" / "zou_hastie.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclass looks its module up
    spec.loader.exec_module(script)
    return script


def test_rescaling_and_selection_by_hand():
    script = load_script()
    data = script.replicate_data(1, seed=0)
    fit = script.Fit("elastic net", strength=0.4, l1_ratio=0.5, coef=np.ones(8), intercept=0.0)
    scaled = script.rescaled(fit, data)
    np.testing.assert_allclose(scaled.coef, np.full(8, 1.1))  # 1 + 0.4 * (1 - 0.5) / 2
    exact = script.Fit("lasso", 1.0, 1.0, data.coef.copy(), 0.0)
    far = script.Fit("lasso", 2.0, 1.0, np.zeros(8), 0.0)
    errors = script.selected_errors(
        [exact, far, *[script.Fit(m, 1, r, data.coef, 0) for m, r in (("ridge", 0), ("elastic net", 0.5))]],
        data,
    )
    assert errors["lasso"] == 0.0  # the true coefficients win on validation


def test_reglab_medians_are_within_10_percent_of_sklearn_on_the_same_replicates(output_dir):
    script = load_script()
    rows = script.main(
        [
            "--examples",
            "1",
            "--replicates",
            "4",
            "--points",
            "6",
            "--epochs",
            "30",
            f"paths.output_dir={output_dir}",
        ]
    )
    for _example, method, paper, ours, theirs, relative in rows:
        assert abs(relative) <= 0.10, (method, ours, theirs)
        assert paper > 0 and ours > 0


def test_the_preset_trains_stacked_and_records_the_papers_error(output_dir):
    """experiment=zou_hastie on one example, 2 replicates and 2 strengths: every run FINISHED,
    stacked, with the population model error and support recovery recorded."""
    from conftest import child_runs, run_cli

    done = run_cli(
        [
            "-m",
            "experiment=zou_hastie",
            "data.design=zou_hastie_1",
            "seed=0,1",
            "regularizer.strength=0.1,1",
            "trainer.max_epochs=5",
            "trainer.check_val_every_n_epoch=5",
        ],
        output_dir,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = child_runs(output_dir)
    assert len(runs) == 12 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert run.data.tags["reglab.engine"] == "stacked"
        assert run.data.metrics["test/population_model_error"] > 0
        assert 0 <= run.data.metrics["test/support_fpr"] <= 1
