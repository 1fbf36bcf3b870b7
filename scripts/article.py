"""The article's claims as a study (docs/article.md): ``experiment=article`` trained stacked in
this process, one experiment per claim of "Regularization Techniques: L1, L2, Dropout, and
Beyond", each prediction decided from paired differences over seeds with the report's rule.

Writes ``claims.md``, ``claims.csv`` and ``measurements.csv`` into
``<paths.output_dir>/studies/<--name>/``; every fit is also an MLflow run.

    python scripts/article.py                                  # every claim of the preset
    python scripts/article.py --claims shrinkage,grouping
    python scripts/article.py --quick logger=none              # 2 seeds, each grid's ends, 2 epochs
    python scripts/article.py study.article.claims.early_stopping.seeds=16

Overrides (Hydra syntax) of ``study.article`` go to the study; the others to every fit.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

STUDY = "study.article"
QUICK_SEEDS = 2
QUICK_FITS = ["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", default=None, help="comma-separated claims of the preset (all)")
    parser.add_argument("--name", default="article", help="folder under <paths.output_dir>/studies/")
    parser.add_argument("--quick", action="store_true", help="2 seeds, each grid's ends, 2 epochs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. study.article.seeds=5")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the study; return the folder it wrote."""
    from reglab.studies.presets import study_main

    return study_main("article", parse_args, run, argv)


def quick(settings: dict) -> None:
    """``--quick``: every claim on 2 seeds, each grid cut to its ends."""
    for spec in settings["claims"].values():
        spec["seeds"] = QUICK_SEEDS
        for arm in spec["arms"].values():
            arm["grid"] = {k: sorted({v[0], v[-1]}) for k, v in (arm.get("grid") or {}).items()}


def run(args: argparse.Namespace, command_line: str) -> Path:
    import pandas as pd
    from omegaconf import OmegaConf

    from reglab.config import CONFIG_NAME, compose, find_config_dir
    from reglab.errors import ConfigError
    from reglab.overrides import check_overrides
    from reglab.studies import article
    from reglab.studies.article_report import write
    from reglab.studies.article_study import Claim, run_claim

    check_overrides(["experiment=article", *args.overrides], find_config_dir(), CONFIG_NAME)
    cfg = compose(["experiment=article", *args.overrides])
    settings = OmegaConf.to_container(cfg.study.article, resolve=True)
    fits = [o for o in args.overrides if not o.lstrip("+~").startswith(STUDY)]
    if args.quick:
        quick(settings)
        fits += QUICK_FITS
    names = args.claims.split(",") if args.claims else list(settings["claims"])
    unknown = sorted(set(names) - set(settings["claims"]))
    if unknown:
        raise ConfigError(
            f"--claims {unknown}: not in {STUDY}.claims, which has {sorted(settings['claims'])}"
        )
    claims = {n: Claim.from_spec(n, settings["claims"][n], settings["seeds"]) for n in names}
    started = time.perf_counter()
    rows, predictions, tables, runs = [], [], [], {}
    for name, claim in claims.items():
        claim_rows, table, runs[name] = run_claim(claim, fits, settings["max_members"], settings["draws"])
        rows += claim_rows
        predictions += claim.predictions
        tables.append(table)
    decided = article.decide(predictions, rows)
    total = sum(r["fits"] for r in runs.values())
    heading = [
        f"`{command_line}`, {datetime.now():%Y-%m-%d %H:%M}: {len(claims)} claims, "
        f"{len(predictions)} predictions decided as one Holm family (alpha 0.05), {total} fits "
        f"({sum(r['failed'] for r in runs.values())} failed), wall time "
        f"{time.perf_counter() - started:.0f} s.",
    ]
    folder = Path(cfg.paths.output_dir) / "studies" / args.name
    for path in write(decided, pd.concat(tables, ignore_index=True), claims, runs, folder, heading):
        print(path)
    print((folder / "claims.md").read_text())
    return folder


if __name__ == "__main__":
    main()
