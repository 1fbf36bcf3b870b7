"""Which presets are studies, and how the command line runs them.

``python train.py experiment=<name>`` of a study (:data:`STUDIES`) runs its script with the
other overrides (:func:`chosen_study`, :func:`run_study`), before Hydra starts: the script
composes its own configs. A ``-m`` sweep of a study is refused (:func:`refuse_in_sweep`): its jobs
would each train one configuration and measure nothing the study is for. Imports nothing heavy:
the refusal comes before anything trains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig

from reglab.errors import ConfigError

STUDIES = ("bias_variance", "article")  # each: conf/experiment/<name>.yaml and scripts/<name>.py


def chosen_study(argv: Sequence[str]) -> str | None:
    """The study a command line chooses (``experiment=<name>``), if any."""
    return next((name for name in STUDIES if f"experiment={name}" in argv), None)


def study_of(cfg: DictConfig) -> str | None:
    """The study whose settings (``study.<name>``) ``cfg`` holds, if any."""
    settings = cfg.get("study") or {}
    return next((name for name in STUDIES if name in settings), None)


def refuse_in_sweep(cfg: DictConfig) -> None:
    """A job holding a study's settings (a ``-m`` sweep of it, or a preset of one's own that
    includes them): refused, naming how to run the study."""
    name = study_of(cfg)
    if name is not None:
        raise refusal(name)


def refusal(name: str) -> ConfigError:
    return ConfigError(
        f"experiment={name} is not allowed in a -m sweep: it is a study, which trains its own "
        f"grid; run it as python train.py experiment={name} [overrides] (or scripts/{name}.py)"
    )


def run_study(name: str, overrides: Sequence[str], root: Path) -> Path:
    """Run ``scripts/<name>.py`` of the checkout at ``root`` with ``overrides`` (without the
    ``experiment=<name>`` that chose it); returns the folder it wrote."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"reglab_study_{name}", root / "scripts" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.main([o for o in overrides if o != f"experiment={name}"])


def study_main(name: str, parse_args: Callable, run: Callable, argv: Sequence[str] | None) -> Path:
    """The ``main`` of ``scripts/<name>.py``: its arguments (``sys.argv`` when ``argv`` is
    None) parsed by ``parse_args``, then ``run(args, command_line)`` inside reglab's command
    context (one-line errors, exit status 2); returns the folder it wrote."""
    import sys

    from reglab.entry import command, import_run_modules

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    with command(name):
        import_run_modules()
        return run(args, " ".join([f"python scripts/{name}.py", *argv]))
