"""The architecture notes' examples of adding a penalty and a data source work as shown:
each is one Python file plus one yaml, found through ``hydra.searchpath``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import reglab

NOTES = ROOT / "docs" / "architecture.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", NOTES.read_text(), flags=re.S)


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notes' Python examples as modules of a user's own package, their yaml files in
    a user config folder (the targets rewritten to the user package)."""
    package = tmp_path / "mine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    penalty = next(b for b in _blocks("python") if "class Hoyer" in b)
    (package / "penalties.py").write_text(
        "import torch\n\nfrom reglab import checks\nfrom reglab.regularizers import Regularizer\n\n\n"
        + penalty
    )
    source = next(b for b in _blocks("python") if "class FriedmanDataModule" in b)
    (package / "friedman.py").write_text(source)
    conf = tmp_path / "conf"
    for block in _blocks("yaml"):
        name = re.match(r"# conf/(\w+/\w+\.yaml)", block).group(1)
        target = conf / name
        target.parent.mkdir(parents=True, exist_ok=True)
        block = block.replace("reglab.regularizers.Hoyer", "mine.penalties.Hoyer")
        target.write_text(block.replace("reglab.data.friedman.", "mine.friedman."))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield conf
    for name in [m for m in sys.modules if m == "mine" or m.startswith("mine.")]:
        del sys.modules[name]


def test_a_new_penalty_and_data_source_train_as_the_notes_show(user_package: Path):
    result = reglab.run(
        [
            f"hydra.searchpath=[file://{user_package}]",
            "data=friedman",
            "regularizer=hoyer",
            "model.hidden=[32]",
            "optimizer.lr=1e-2",
            "trainer.max_epochs=40",
            "logger=none",
        ]
    )
    assert type(result.data).__name__ == "FriedmanDataModule" and result.data.n_features == 10
    assert type(result.model).__module__ == "reglab.models"
    assert result.metrics["test/r2"] > 0.5  # Friedman #1 is learnable by a small MLP
    assert result.history["train/penalty"][-1] > 0
