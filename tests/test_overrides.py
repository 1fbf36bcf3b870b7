"""Hydra's own errors on the command line end like reglab's: one line naming the override
and what is allowed, exit status 2, fast, and nothing written."""

from __future__ import annotations

import pytest
from conftest import run_cli_counting_imports

from reglab.overrides import command_line_overrides


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["dropuot=0.3"],
            "no key dropuot (did you mean dropout or model.dropout?); to add a new key use +dropuot=0.3",
        ),
        (["model.hiden=[3]"], "there is no key model.hiden (did you mean model.hidden"),
        (["regularizer=l3"], "'l3' is not an option of regularizer (did you mean l2 or l1?)"),
        (["-m", "regularizer=none,l3"], "'l3' is not an option of regularizer"),
        (["dropout=[1,2"], "'dropout=[1,2' is not a valid override"),
        (["+dropout=0.2"], "dropout exists already; set it with dropout=..."),
    ],
)
def test_a_bad_override_is_one_line_and_status_2(arguments, expected, output_dir):
    done, imported = run_cli_counting_imports(arguments, output_dir)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert lines[0].startswith("reglab: error: ")
    assert list(output_dir.iterdir()) == []
    assert "torch" not in imported  # refused before any training module is imported


def test_informational_commands_are_left_to_hydra():
    assert command_line_overrides(["--help"]) is None
    assert command_line_overrides(["experiment=ablation", "--cfg", "job"]) is None
    assert command_line_overrides(["-m", "a=1,2", "--config-name", "train", "b=3"]) == ["a=1,2", "b=3"]
