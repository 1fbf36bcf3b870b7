"""Strength grids derived from the data: from the smallest strength that zeroes a linear model.

For reglab's loss and penalty (docs/penalties.md, "The penalty convention") and a linear model with free
intercepts, every weight is zero at the optimum exactly when the strength is at least::

    regression (mean squared error):      s_max = (2 / n) * max |X' (y - mean(y))| / l1_ratio
    classification (softmax cross-entropy): s_max = (1 / n) * max |X' (Y - p)| / l1_ratio

(``Y`` one-hot labels, ``p`` the class frequencies: the intercept-only model's predictions;
the maxima run over features and outputs). At ``s_max`` the gradient of the data loss at zero
weights is exactly balanced by the L1 sub-gradient; below it some weight leaves zero (the
start of the lasso / elastic-net path, as in glmnet). A network's strengths live on the same
scale per weight, so the linear ``s_max`` gives a grid's upper end for any model of the data.

    python -m reglab.grid data=digits                 # the grid for the default data
    python -m reglab.grid data=diabetes regularizer.l1_ratio=0.5 --points 8
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from reglab.data import CLASSIFICATION


def zero_strength(x: np.ndarray, y: np.ndarray, task: str, l1_ratio: float = 1.0) -> float:
    """The smallest strength that makes every weight of the linear model zero (see the
    module docstring); ``x`` of shape ``(n, p)``, ``y`` labels ``(n,)`` or targets ``(n, k)``."""
    if not 0 < l1_ratio <= 1:
        raise ValueError(f"l1_ratio={l1_ratio}: no strength zeroes the weights without an L1 part")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    n = len(x)
    if task == CLASSIFICATION:
        labels = np.asarray(y).ravel()
        onehot = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float64)
        gradient = x.T @ (onehot - onehot.mean(axis=0)) / n
    else:
        targets = np.asarray(y, dtype=np.float64).reshape(n, -1)
        gradient = 2.0 * x.T @ (targets - targets.mean(axis=0)) / n
    return float(np.abs(gradient).max() / l1_ratio)


def strength_grid(
    x: np.ndarray, y: np.ndarray, task: str, l1_ratio: float = 1.0, points: int = 10, min_ratio: float = 1e-3
) -> np.ndarray:
    """``points`` log-spaced strengths from :func:`zero_strength` down to ``min_ratio`` times it."""
    top = zero_strength(x, y, task, l1_ratio)
    return top * np.logspace(0, np.log10(min_ratio), points)


def data_grid(datamodule, l1_ratio: float = 1.0, points: int = 10, min_ratio: float = 1e-3) -> np.ndarray:
    """:func:`strength_grid` of a set-up data module's training split, in the units of the loss
    (standardized targets when the data standardizes them)."""
    x, y = (t.double().numpy() if t.is_floating_point() else t.numpy() for t in datamodule.tensors["train"])
    scale = getattr(datamodule, "target_scale", None)
    if scale is not None:
        y = (y - scale[0].numpy()) / scale[1].numpy()
    return strength_grid(x, y, datamodule.task, l1_ratio, points, min_ratio)


def main(argv: list[str] | None = None) -> np.ndarray:
    parser = argparse.ArgumentParser(prog="python -m reglab.grid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10, help="number of strengths (log-spaced)")
    parser.add_argument("--min-ratio", type=float, default=1e-3, help="smallest strength / largest")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=diabetes")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from reglab.config import compose
    from reglab.pipeline import prepare

    cfg = compose(args.overrides)
    data = prepare(cfg).datamodule
    l1_ratio = float(cfg.regularizer.get("l1_ratio", 1.0)) if "l1_ratio" in cfg.regularizer else 1.0
    grid = data_grid(data, l1_ratio, args.points, args.min_ratio)
    print(f"zero strength (all weights of a linear model zero): {grid[0]:.4g}")
    print("grid: " + ",".join(f"{s:.3g}" for s in grid))
    return grid


if __name__ == "__main__":
    main()
