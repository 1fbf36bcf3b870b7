"""Every option of every shipped config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from reglab.build import check_accelerator
from reglab.config import compose, validate
from reglab.errors import ConfigError, MissingDataError
from reglab.pipeline import prepare

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["data", "model", "regularizer", "optimizer", "trainer", "callbacks", "logger"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def _files_for(option: str, tmp_path: Path) -> list[str]:
    """Overrides pointing file-based data options at small files written here."""
    if option in ("mnist", "fashion_mnist", "cifar10"):
        from reglab.data.images import write_example_set

        write_example_set(option, tmp_path)
        return [f"data.root={tmp_path}"]
    if option == "csv":
        table = tmp_path / "table.csv"
        table.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
        return [f"data.path={table}", "data.target=label"]
    return []


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_validates_and_instantiates(group, option, tmp_path):
    extra = _files_for(option, tmp_path) if group == "data" else []
    cfg = compose([f"{group}={option}", *extra])
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)
    data = instantiate(cfg.data)
    data.setup("fit")
    model = instantiate(
        cfg.model,
        in_features=data.n_features,
        out_features=data.n_outputs,
        input_shape=list(data.input_shape),
    )
    x, _ = next(iter(data.train_dataloader()))
    assert model(x).shape == (len(x), data.n_outputs)
    regularizer = instantiate(cfg.regularizer)
    assert torch.isfinite(regularizer.penalty(regularizer.select(model)))
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    for node in (cfg.callbacks or {}).values():
        instantiate(node)
    if cfg.trainer.get("accelerator") != "gpu" or torch.cuda.is_available():
        instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    else:  # without CUDA the gpu trainer is refused before anything is built
        with pytest.raises(ConfigError, match="trainer.accelerator='gpu' is not available"):
            check_accelerator(cfg)


def test_top_level_knobs_reach_the_model():
    cfg = compose(["dropout=0.3", "batchnorm=true"])
    assert cfg.model.dropout == 0.3 and cfg.model.batchnorm is True
    model = instantiate(cfg.model, in_features=4, out_features=2)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"SeededDropout", "BatchNorm1d"} <= kinds


def test_constructors_and_validate_name_key_value_and_range():
    """A value of one of reglab's classes is refused by its constructor (through Hydra's
    instantiate, unwrapped); a rule spanning two keys by ``validate``."""
    with pytest.raises(ConfigError, match=r"regularizer\.strength=-0\.5 .* >= 0"):
        prepare(compose(["regularizer.strength=-0.5", "logger=none"]))
    with pytest.raises(ConfigError, match=r"data\.val_fraction \+ data\.test_fraction"):
        validate(compose(["data.val_fraction=0.5", "data.test_fraction=0.5"]))


def test_validate_checks_a_table_path_before_anything_is_imported(tmp_path):
    """A job's door (reglab.config.check_job) checks before anything is built: a missing file
    must not cost the seconds of importing lightning and mlflow first."""
    import subprocess
    import sys

    with pytest.raises(MissingDataError, match=r"data\.path=.*missing\.csv.* does not exist"):
        validate(compose(["data=csv", f"data.path={tmp_path / 'missing.csv'}", "data.target=y"]))
    with pytest.raises(MissingDataError, match="is a folder, not a file"):
        validate(compose(["data=csv", f"data.path={tmp_path}", "data.target=y"]))
    probe = (
        "import sys; from reglab.config import compose, validate\n"
        f"try: validate(compose(['data=csv', 'data.path={tmp_path / 'x.csv'}', 'data.target=y']))\n"
        "except FileNotFoundError: pass\n"
        "print(sorted({'torch', 'lightning', 'mlflow'} & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
