"""ComposeOnce gives every sweep job the config Hydra composes for it, composing once per
set of group choices (reglab.compose_once)."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from reglab.compose_once import ComposeOnce
from reglab.config import CONFIG_NAME, find_config_dir, prepare_environment

JOBS = [
    # a grid: group choices x values, as the ablation sweeps them
    *[
        ["experiment=ablation", f"regularizer={r}", f"regularizer.strength={s}", f"dropout={d}", f"seed={n}"]
        for r in ("none", "l1", "elastic")
        for s in ("0.02", "2e-4")
        for d in ("0.0", "0.3")
        for n in (0, 1)
    ],
    # list values replace each other; an optimizer group with its values
    ["model.hidden=[64]", "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0.5"],
    ["model.hidden=[128,32]", "optimizer=sgd", "optimizer.lr=0.3", "optimizer.momentum=0.0"],
    # a key inside another override's key, additions, deletions, dict values, hydra keys
    ["trainer.max_epochs=3", "trainer={max_epochs: 4}"],
    ["trainer.max_epochs=5", "trainer={max_epochs: 6}"],
    ["+extra.note=a", "seed=1"],
    ["+extra.note=b", "seed=2"],
    ["~study", "seed=3"],
    ["~study", "seed=4"],
    ["hydra.job.chdir=false", "seed=5"],
    ["hydra.job.chdir=true", "seed=6"],
    ["regularizer=l2", "regularizer.strength=${optimizer.lr}"],
    ["regularizer=l2", "regularizer.strength=0.5"],
]


@pytest.fixture(scope="module")
def loader_and_master():
    config_dir = find_config_dir()
    prepare_environment(config_dir)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(CONFIG_NAME, ["hydra/launcher=stacked"], RunMode.MULTIRUN)
    return loader, master  # the loader keeps its config repository after Hydra is cleared


def test_every_job_gets_hydras_config(loader_and_master):
    loader, master = loader_and_master
    once = ComposeOnce(loader)
    for job in JOBS:
        expected = OmegaConf.to_container(loader.load_sweep_config(master, job), resolve=False)
        assert OmegaConf.to_container(once.load_sweep_config(master, job), resolve=False) == expected, job
    # 3 regularizers (the grid), the two optimizer jobs share one, one per job with a dict
    # value, an addition or a hydra key (6), the two deletions share one, regularizer=l2 one
    assert once.compositions == 3 + 1 + 6 + 1 + 1


def test_each_call_returns_its_own_copy(loader_and_master):
    loader, master = loader_and_master
    once = ComposeOnce(loader)
    first = once.load_sweep_config(master, ["seed=1"])
    first.seed = 99
    assert once.load_sweep_config(master, ["seed=1"]).seed == 1
    assert once.load_sweep_config(master, ["seed=2"]).seed == 2


def test_a_bad_key_fails_with_hydras_message(loader_and_master):
    loader, master = loader_and_master
    once = ComposeOnce(loader)
    once.load_sweep_config(master, ["seed=1", "regularizer.strength=0.1"])
    bad = ["seed=2", "regularizer.no_such_key=1"]
    with pytest.raises(ConfigCompositionException) as hydra_error:
        loader.load_sweep_config(master, bad)
    with pytest.raises(ConfigCompositionException) as our_error:
        once.load_sweep_config(master, bad)
    assert str(our_error.value) == str(hydra_error.value)
    assert "no_such_key" in str(our_error.value.__cause__ or our_error.value)


def test_a_searchpath_override_finds_its_groups(loader_and_master, tmp_path):
    loader, master = loader_and_master
    (tmp_path / "regularizer").mkdir()
    (tmp_path / "regularizer" / "mine.yaml").write_text("_target_: reglab.regularizers.L2\nstrength: 0.25\n")
    once = ComposeOnce(loader)
    for seed in (1, 2):
        job = [f"hydra.searchpath=[file://{tmp_path}]", "regularizer=mine", f"seed={seed}"]
        expected = OmegaConf.to_container(loader.load_sweep_config(master, job), resolve=False)
        assert OmegaConf.to_container(once.load_sweep_config(master, job), resolve=False) == expected
        assert expected["regularizer"]["strength"] == 0.25
    assert once.compositions == 1


def test_compose_many_gives_each_job_what_compose_with_choices_gives():
    from reglab.config import compose_many, compose_with_choices

    jobs = [JOBS[0], JOBS[1], JOBS[-2], ["seed=7"], ["data=diabetes", "model=linear", "seed=8"]]
    for (cfg, choices), job in zip(compose_many(jobs), jobs, strict=True):
        expected, expected_choices = compose_with_choices(job)
        assert OmegaConf.to_container(cfg, resolve=False) == OmegaConf.to_container(expected, resolve=False)
        assert choices == expected_choices
