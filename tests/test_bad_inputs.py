"""Bad input on the command line: exit status 2, one line on stderr naming the key (or the
override) and what is allowed, and the output folder untouched (no store, no run).

Two kinds, told apart by what the refusing process imported (``python -X importtime``): rules
checked before any training module is imported (``validate`` and the override check: no torch)
and values refused by a constructor (the data, model and regularizer are built before Lightning
and MLflow load: torch, but neither of those)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli_counting_imports

pytestmark = pytest.mark.slow

EARLY = [  # (overrides, text the one line must contain)
    (["seed=abc"], "seed='abc' is not allowed: must be an integer"),
    (["seed=1.5"], "seed=1.5 is not allowed"),
    (["optimizer.lr=0"], "optimizer.lr=0 is not allowed: must be a number > 0"),
    (["optimizer.lr=-1"], "optimizer.lr=-1 is not allowed"),
    (["optimizer.lr=inf"], "optimizer.lr=inf is not allowed: must be a finite number"),
    (["optimizer.lr=nan"], "optimizer.lr=nan is not allowed: must be a finite number"),
    (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1 is not allowed"),
    (["optimizer=sgd", "optimizer.momentum=1.0"], "optimizer.momentum=1.0 is not allowed"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed: must be an integer >= 1"),
    (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5 is not allowed"),
    (["callbacks.early_stopping.patience=-1"], "callbacks.early_stopping.patience=-1 is not allowed"),
    (["callbacks.early_stopping.min_delta=-1"], "callbacks.early_stopping.min_delta=-1 is not allowed"),
    (["dropout=1.0"], "dropout=1.0 is not allowed: must be a number in [0, 1)"),
    (["dropout=-0.1"], "dropout=-0.1 is not allowed"),
    (["dropout=1.5"], "dropout=1.5 is not allowed: must be a number in [0, 1)"),
    (["dropout=abc"], "dropout='abc' is not allowed"),
    (["batchnorm=maybe"], "batchnorm='maybe' is not allowed: must be true or false"),
    (["model=linear", "dropout=0.5"], "dropout=0.5 is not allowed with reglab.models.LinearModel"),
    (["model=linear", "batchnorm=true"], "batchnorm=True is not allowed with reglab.models.LinearModel"),
    (["regularizer.strength=inf"], "regularizer.strength=inf is not allowed: must be a finite number"),
    (["regularizer.strength=nan"], "regularizer.strength=nan is not allowed"),
    (["regularizer.strength=-inf"], "regularizer.strength=-inf is not allowed"),
    (["data.batch_size=inf"], "data.batch_size=inf is not allowed"),
    (["data.val_fraction=0.6", "data.test_fraction=0.5"], "data.val_fraction + data.test_fraction = 1.1"),
    (["data=csv", "data.path=/nonexistent/x.csv", "data.target=y"], "data.path='/nonexistent/x.csv'"),
    (["data=csv", "data.path=/tmp", "data.target=y"], "is a folder, not a file"),
    (["dropuot=0.3"], "there is no key dropuot (did you mean dropout"),
    (["regularizer=l3"], "'l3' is not an option of regularizer"),
    (["regularizer=bogus"], "regularizer=bogus is not allowed: 'bogus' is not an option of regularizer"),
    (["model=mlpp"], "'mlpp' is not an option of model (did you mean mlp?)"),
    (["-m", "regularizer=none,l3"], "'l3' is not an option of regularizer"),
    (["dropout=[1,2"], "'dropout=[1,2' is not a valid override"),
    (["+dropout=0.2"], "dropout exists already"),
    (["~seed"], "cannot be resolved: Interpolation key 'seed' not found"),
]
BUILT = [
    (["regularizer.strength=-1"], "regularizer.strength=-1 is not allowed: must be a number >= 0"),
    (["regularizer=elastic", "regularizer.l1_ratio=1.5"], "regularizer.l1_ratio=1.5 is not allowed"),
    (["regularizer.mode=fancy"], "regularizer.mode='fancy' is not allowed: must be one of penalty, proximal"),
    (["regularizer=max_norm", "regularizer.max_norm=0"], "regularizer.max_norm=0 is not allowed"),
    (["regularizer.include_bias=maybe"], "regularizer.include_bias='maybe' is not allowed"),
    (["model.hidden=[]"], "model.hidden=[] is not allowed"),
    (["model.hidden=[0]"], "model.hidden=[0] is not allowed"),
    (["model.hidden=[64,0]"], "model.hidden=[64, 0] is not allowed"),
    (["model.activation=swishy"], "model.activation='swishy' is not allowed"),
    (["data.batch_size=0"], "data.batch_size=0 is not allowed"),
    (["data.eval_batch_size=0"], "data.eval_batch_size=0 is not allowed"),
    (["data.repeat=0"], "data.repeat=0 is not allowed"),
    (["+data.impute=mode"], "data.impute='mode' is not allowed: must be one of mean, median"),
    (["data=synthetic", "data.correlation={kind:circle}"], "data.correlation.kind='circle' is not allowed"),
    (["data=synthetic", "data.sigma=-1"], "data.sigma=-1 is not allowed"),
    (["+model.foo=1"], "model: reglab.models.MLP does not accept these arguments"),
    (["trainer=gpu"], "trainer.accelerator='gpu' is not available"),
]


def _refused(arguments: list[str], expected: str, output_dir: Path) -> set[str]:
    """The packages the process imported before it refused ``arguments`` with ``expected``."""
    done, imported = run_cli_counting_imports(arguments, output_dir)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("reglab: error: ") and expected in lines[0], done.stderr
    assert list(output_dir.iterdir()) == []  # no store, no run folder
    return imported


@pytest.mark.parametrize(("arguments", "expected"), EARLY, ids=[" ".join(a) for a, _ in EARLY])
def test_refused_before_anything_is_imported(arguments, expected, output_dir):
    assert "torch" not in _refused(arguments, expected, output_dir)


@pytest.mark.parametrize(("arguments", "expected"), BUILT, ids=[" ".join(a) for a, _ in BUILT])
def test_refused_by_a_constructor_before_training(arguments, expected, output_dir):
    imported = _refused(arguments, expected, output_dir)
    assert "lightning" not in imported and "mlflow" not in imported
