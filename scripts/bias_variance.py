"""The bias-variance study (docs/bias_variance.md): ``experiment=bias_variance`` trained stacked in
this process, every fit's test predictions decomposed into bias^2, variance (its data and seed
parts) and noise, or Domingos' 0-1 and the cross-entropy terms, per data set, regularizer and
strength, with bootstrap standard errors over the training sets.

Writes ``bias_variance.csv``, ``bias_variance.md`` and ``bias_variance_<data set>.png`` into
``<paths.output_dir>/studies/<--name>/``; every fit is also an MLflow run.

    python scripts/bias_variance.py                          # both data sets of the preset
    python scripts/bias_variance.py --datasets synthetic
    python scripts/bias_variance.py --quick logger=none      # 3 sets x 2 seeds x 2 strengths, 1 epoch
    python scripts/bias_variance.py study.bias_variance.replicates=20 paths.output_dir=/tmp/bv

Overrides (Hydra syntax) go to the study's config and to every fit.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

QUICK = {"replicates": 3, "seeds": 2, "draws": 20}
QUICK_FITS = ["trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=None, help="comma-separated data sets of the preset (all)")
    parser.add_argument("--name", default="bias_variance", help="folder under <paths.output_dir>/studies/")
    parser.add_argument(
        "--quick", action="store_true", help="3 training sets x 2 seeds, each grid's ends, 1 epoch"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. study.bias_variance.seeds=5")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the study; return the folder it wrote."""
    from reglab.studies.presets import study_main

    return study_main("bias_variance", parse_args, run, argv)


def run(args: argparse.Namespace, command_line: str) -> Path:
    import pandas as pd
    from omegaconf import OmegaConf

    from reglab.config import compose
    from reglab.errors import ConfigError
    from reglab.studies.bias_variance_report import write
    from reglab.studies.bias_variance_study import Study, run_dataset

    cfg = compose(["experiment=bias_variance", *args.overrides])
    settings = OmegaConf.to_container(cfg.study.bias_variance, resolve=True)
    fits = list(args.overrides)
    if args.quick:
        settings.update(QUICK)
        for spec in settings["datasets"].values():
            spec.update(replicates=QUICK["replicates"], seeds=QUICK["seeds"])
            spec["strengths"] = {r: [min(s), max(s)] for r, s in spec["strengths"].items()}
        fits += QUICK_FITS
    study = Study(**settings)
    names = args.datasets.split(",") if args.datasets else list(study.datasets)
    unknown = sorted(set(names) - set(study.datasets))
    if unknown:
        raise ConfigError(
            f"--datasets {unknown}: not in study.bias_variance.datasets, which has {sorted(study.datasets)}"
        )
    started = time.perf_counter()
    parts, timings = [], []
    for name in names:
        begun = time.perf_counter()
        parts.append(run_dataset(name, study.datasets[name], study, fits))
        timings.append(f"{name} {time.perf_counter() - begun:.0f} s")
    rows = pd.concat(parts, ignore_index=True)
    folder = Path(cfg.paths.output_dir) / "studies" / args.name
    configurations = rows.drop_duplicates(["dataset", "regularizer", "strength"])
    heading = [
        f"`{command_line}`, {datetime.now():%Y-%m-%d %H:%M}: held-out points of split seed "
        f"{study.split_seed}, standard errors from {study.draws} bootstrap resamples of the training "
        f"sets (each with its seeds); wall time {time.perf_counter() - started:.0f} s "
        f"({', '.join(timings)}); {len(configurations)} configurations, {int(configurations.fits.sum())} "
        f"fits, {int(configurations.failed.sum())} failed.",
    ]
    for path in write(rows, folder, heading):
        print(path)
    return folder


if __name__ == "__main__":
    main()
