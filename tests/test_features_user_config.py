"""The recipe for a reusable option of one's own (docs/penalties.md): a config folder of the user's,
added to Hydra's search path on the command line."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import ROOT, all_runs, run_cli, store_uri

pytestmark = pytest.mark.slow


def test_readme_searchpath_recipe_finds_the_users_own_option(output_dir, tmp_path):
    section = (ROOT / "docs" / "penalties.md").read_text()
    section = section[section.index("## Write your own regularizer") :]
    code = re.search(r"```python\n(# my_penalties.py\n.*?)```", section, re.S).group(1)
    recipe = re.search(
        r"For a reusable option, put a yaml with `(.+?)` and\s+`(.+?)` in `<your config dir>/(.+?)`"
        r" and add\s+`(hydra\.searchpath=.+?)` to the command; then `(.+?)`\.",
        section,
    )
    assert recipe, "the searchpath recipe of docs/penalties.md changed: update this test with it"
    first_key, second_key, file_name, searchpath, option = recipe.groups()
    assert (file_name, option) == ("regularizer/hoyer.yaml", "regularizer=hoyer")

    (tmp_path / "my_penalties.py").write_text(code)
    config_dir = tmp_path / "my_conf"
    (config_dir / file_name).parent.mkdir(parents=True)
    (config_dir / file_name).write_text(f"{first_key}\n{second_key}\n")
    searchpath = searchpath.replace("<your config dir>", str(config_dir))
    done = run_cli(
        [*shlex.split(option), searchpath, "trainer.max_epochs=2"],
        output_dir,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["choice.regularizer"] == "hoyer"
    assert params["regularizer._target_"] == "my_penalties.HoyerSquare"
    assert float(params["regularizer.strength"]) == 1e-4
    assert set(k for k in params if k.startswith("regularizer.")) == {
        "regularizer._target_",
        "regularizer.strength",
    }
    assert run.data.metrics["train/penalty"] > 0
