"""Zou & Hastie (2005), examples 1-4: lasso, elastic net (naive and rescaled) and ridge, each
tuned on the validation split of every replicate, by reglab and by scikit-learn on the same
replicates; the median model error of each method next to the paper's Table 2.

Each replicate ``r`` is ``data=synthetic data.design=zou_hastie_<k> seed=r`` (the paper's
designs, 20/20/200, 100/100/400 or 50/50/400 samples). reglab fits ``model=linear`` by proximal
gradient descent (ISTA: plain SGD, full batch, step ``1/L`` of the replicate's own data,
``regularizer.mode=proximal``) to convergence, every (method, strength) of a replicate a member
of one stacked fit (:func:`reglab.stacked.api.run_variations`). Strength grids come from the
data (:mod:`reglab.grid`: from the strength that zeroes the lasso / elastic net down to 1e-3 of
it; ridge over a fixed log grid). scikit-learn fits ``Lasso(alpha=s/2)``,
``ElasticNet(alpha=s/2, l1_ratio)`` and ``Ridge(alpha=n*s/2)`` at the same points (reglab's
strength convention, README). Per replicate and method the point with the lowest validation MSE
is selected; its model error is the population ``(b - beta)' Sigma (b - beta)`` (the paper's
"MSE"). The rescaled elastic net is the paper's ``(1 + lambda2) * b_naive`` with
``lambda2 = s * (1 - l1_ratio) / 2`` in reglab's convention (features of unit variance),
selected on validation like the others.

    python scripts/zou_hastie.py                      # 20 replicates, examples 1-4
    python scripts/zou_hastie.py --examples 1 --replicates 5 --epochs 20   # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

# Zou & Hastie (2005), Table 2: median MSE (model error) over 50 replicates, as printed
PAPER = {
    1: {"lasso": 3.06, "elastic net": 2.51, "ridge": 4.49, "naive elastic net": 5.70},
    2: {"lasso": 3.87, "elastic net": 3.16, "ridge": 2.84, "naive elastic net": 2.73},
    3: {"lasso": 65.0, "elastic net": 56.6, "ridge": 39.5, "naive elastic net": 41.0},
    4: {"lasso": 46.6, "elastic net": 34.5, "ridge": 64.5, "naive elastic net": 45.9},
}
METHODS = ("lasso", "elastic net", "ridge", "naive elastic net")
L1_RATIOS = (0.2, 0.5, 0.8)  # the elastic net's mixes (lasso: 1, ridge: 0)
RIDGE_GRID = np.logspace(2, -3, 11)


@dataclass
class Fit:
    """One fitted point of a replicate: its method, strength, mix and coefficients."""

    method: str
    strength: float
    l1_ratio: float
    coef: np.ndarray
    intercept: float


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", default="1,2,3,4", help="comma-separated examples of the paper")
    parser.add_argument("--replicates", type=int, default=20, help="replicates per example (seeds 0..N-1)")
    parser.add_argument("--points", type=int, default=10, help="strengths per lasso / elastic-net grid")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of 100 full-batch ISTA steps")
    parser.add_argument("--output", default=None, help="also write the table (markdown) to this file")
    parser.add_argument("overrides", nargs="*", help="extra overrides, e.g. paths.output_dir=/tmp/x")
    return parser.parse_args(argv)


def replicate_data(example: int, seed: int):
    """The data module reglab builds for ``data.design=zou_hastie_<example> seed=<seed>``
    (composed from the shipped config, so that both libraries fit the same samples)."""
    from reglab.build import instantiate
    from reglab.config import compose

    cfg = compose(["data=synthetic", f"data.design=zou_hastie_{example}", f"seed={seed}"])
    data = instantiate(cfg.data, "data")
    data.setup()
    return data


def arrays(data, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = data.tensors[split]
    return x.double().numpy(), y.double().numpy().ravel()


def points(data, n_points: int) -> list[tuple[str, float, float]]:
    """``(method, strength, l1_ratio)`` of every fit of a replicate."""
    from reglab.grid import strength_grid

    x, y = arrays(data, "train")
    found = [("lasso", s, 1.0) for s in strength_grid(x, y, "regression", 1.0, n_points)]
    for ratio in L1_RATIOS:
        found += [("elastic net", s, ratio) for s in strength_grid(x, y, "regression", ratio, n_points)]
    return found + [("ridge", s, 0.0) for s in RIDGE_GRID]


def ista_step(data) -> float:
    """``1 / L`` for the mean squared error with an intercept on the training split."""
    x, _ = arrays(data, "train")
    design = np.hstack([x, np.ones((len(x), 1))])
    return float(1.0 / (2.0 * np.linalg.eigvalsh(design.T @ design / len(x)).max()))


def reglab_fits(example: int, replicates: list, args) -> list[list[Fit]]:
    """Every point of every replicate of one example, fitted as stacked members."""
    from reglab.stacked.api import run_variations

    base = [
        "data=synthetic",
        f"data.design=zou_hastie_{example}",
        "model=linear",
        "regularizer=elastic",
        "regularizer.mode=proximal",
        "optimizer=sgd",
        "optimizer.momentum=0",
        "callbacks=none",
        "logger=none",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.check_val_every_n_epoch={args.epochs}",
        *args.overrides,
    ]
    variations, labels = [], []
    for seed, data in enumerate(replicates):
        step = ista_step(data)
        for method, strength, ratio in points(data, args.points):
            variations.append(
                {
                    "seed": seed,
                    "optimizer.lr": step,
                    "regularizer.strength": float(strength),
                    "regularizer.l1_ratio": ratio,
                }
            )
            labels.append((seed, method, strength, ratio))
    results = run_variations(base, variations, max_members=len(variations), verbose=False)
    fits: list[list[Fit]] = [[] for _ in replicates]
    for (seed, method, strength, ratio), result in zip(labels, results, strict=True):
        weight = result.model.weight.detach().double().numpy().ravel()
        bias = float(result.model.bias.detach().double())
        fits[seed].append(Fit(method, strength, ratio, weight, bias))
    return fits


def sklearn_fits(replicates: list, n_points: int) -> list[list[Fit]]:
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    fits = []
    for data in replicates:
        x, y = arrays(data, "train")
        mine = []
        for method, strength, ratio in points(data, n_points):
            if method == "ridge":
                model = Ridge(alpha=len(x) * strength / 2)
            elif ratio == 1.0:
                model = Lasso(alpha=strength / 2, tol=1e-10, max_iter=100_000)
            else:
                model = ElasticNet(alpha=strength / 2, l1_ratio=ratio, tol=1e-10, max_iter=100_000)
            model.fit(x, y)
            mine.append(Fit(method, strength, ratio, model.coef_.copy(), float(model.intercept_)))
        fits.append(mine)
    return fits


def rescaled(fit: Fit, data) -> Fit:
    """The paper's elastic net: ``(1 + lambda2) * b`` with the intercept refitted to the means."""
    x, y = arrays(data, "train")
    coef = (1.0 + fit.strength * (1.0 - fit.l1_ratio) / 2.0) * fit.coef
    return Fit("elastic net", fit.strength, fit.l1_ratio, coef, float(y.mean() - x.mean(axis=0) @ coef))


def selected_errors(fits: list[Fit], data) -> dict[str, float]:
    """Per method, the population model error of the point with the lowest validation MSE."""
    x, y = arrays(data, "val")
    candidates = {
        "lasso": [f for f in fits if f.method == "lasso"],
        "ridge": [f for f in fits if f.method == "ridge"],
        "naive elastic net": [f for f in fits if f.method == "elastic net"],
        "elastic net": [rescaled(f, data) for f in fits if f.method == "elastic net"],
    }
    errors = {}
    for method, options in candidates.items():
        best = min(options, key=lambda f: np.mean((x @ f.coef + f.intercept - y) ** 2))
        difference = best.coef - data.coef
        errors[method] = float(difference @ data.covariance @ difference)
    return errors


def example_rows(example: int, args) -> list[list]:
    replicates = [replicate_data(example, seed) for seed in range(args.replicates)]
    started = time.perf_counter()
    ours = reglab_fits(example, replicates, args)
    seconds = time.perf_counter() - started
    theirs = sklearn_fits(replicates, args.points)
    mine = [selected_errors(f, d) for f, d in zip(ours, replicates, strict=True)]
    reference = [selected_errors(f, d) for f, d in zip(theirs, replicates, strict=True)]
    print(f"example {example}: {len(ours[0]) * len(replicates)} fits in {seconds:.0f} s", file=sys.stderr)
    rows = []
    for method in METHODS:
        a = float(np.median([m[method] for m in mine]))
        b = float(np.median([m[method] for m in reference]))
        rows.append([example, method, PAPER[example][method], a, b, a / b - 1])
    return rows


def ordering(rows: list[list], column: int) -> str:
    return " < ".join(r[1] for r in sorted(rows, key=lambda r: r[column]))


def render(rows: list[list], replicates: int) -> str:
    lines = [
        f"| example | method | paper (50 reps) | reglab ({replicates} reps) | scikit-learn (same reps) "
        "| reglab / sklearn - 1 |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e} | {m} | {p:.2f} | {a:.2f} | {b:.2f} | {d:+.1%} |" for e, m, p, a, b, d in rows]
    for example in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == example]
        same = ordering(mine, 3) == ordering(mine, 4)
        lines.append(
            f"\nexample {example}: reglab {ordering(mine, 3)}; scikit-learn {ordering(mine, 4)} "
            f"({'same' if same else 'different'} ordering); paper {ordering(mine, 2)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[list]:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rows = []
    for example in (int(e) for e in args.examples.split(",")):
        rows += example_rows(example, args)
    table = render(rows, args.replicates)
    print(table)
    if args.output:
        from pathlib import Path

        Path(args.output).write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
