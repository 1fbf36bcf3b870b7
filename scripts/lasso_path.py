"""Regularization path: reglab's proximal L1 coefficients against scikit-learn's lasso_path.

Trains ``model=linear`` on a regression set to convergence (full batch, plain SGD,
``regularizer.mode=proximal``, no early stopping) at log-spaced strengths, each an MLflow
run under one parent run "lasso_path". scikit-learn's ``lasso_path`` is computed on the
same (standardized) training split at ``alpha = strength / 2`` (see the convention table
in docs/penalties.md). The figure is written to ``outputs/lasso_path.png`` and logged to the parent.

    python scripts/lasso_path.py --points 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import reglab
from reglab import tracking
from reglab.config import compose

CONVERGED = [
    "model=linear",
    "data.batch_size=null",
    "optimizer=sgd",
    "optimizer.momentum=0",
    "regularizer=l1",
    "regularizer.mode=proximal",
    "callbacks=none",
    "+trainer.limit_val_batches=0",
    "++data.standardize_target=false",  # the path in the target's own units, as sklearn's
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="diabetes", help="a regression option of the data group")
    parser.add_argument("--points", type=int, default=8, help="number of strengths (log-spaced)")
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=1e-3,
        help="smallest strength as a fraction of the one that zeroes all coefficients",
    )
    parser.add_argument("--epochs", type=int, default=3000, help="full-batch steps per strength")
    parser.add_argument("--lr", type=float, default=0.12, help="SGD step (<= 1/L for convergence)")
    parser.add_argument("--output", type=Path, default=None, help="PNG path (default outputs/lasso_path.png)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. paths.output_dir=/tmp/x")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    base = [
        *CONVERGED,
        f"data={args.data}",
        f"optimizer.lr={args.lr}",
        f"trainer.max_epochs={args.epochs}",
        *args.overrides,
    ]
    cfg = compose(base)
    output = args.output or Path(cfg.paths.output_dir) / "lasso_path.png"

    probe = reglab.run([*base, "logger=none", "trainer.max_epochs=1"])
    x, y = (t.double().numpy() for t in probe.data.tensors["train"])
    y = y.ravel() - y.mean()
    alpha_max = np.abs(x.T @ y).max() / len(x)
    strengths = 2 * alpha_max * np.logspace(0, np.log10(args.min_ratio), args.points)

    parent = tracking.TrackedRun(*tracking.experiment_of(cfg))
    parent.start("lasso_path", {"reglab.kind": "lasso_path"})
    try:
        ours = []
        for i, strength in enumerate(strengths, 1):
            result = reglab.run(
                [*base, f"regularizer.strength={strength:.6g}", f"logger.parent_run_id={parent.run_id}"]
            )
            ours.append(result.model.weight.detach().double().numpy().ravel())
            print(
                f"[{i}/{len(strengths)}] strength={strength:.4g} "
                f"nonzero={int((ours[-1] != 0).sum())}/{ours[-1].size}",
                flush=True,
            )
        ours = np.array(ours)
        theirs = _sklearn_path(x, y, strengths / 2)
        difference = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        _plot(strengths, ours, theirs, output, args.data)
        parent.log_params({"data": args.data, "points": str(args.points), "epochs": str(args.epochs)})
        parent.log_metrics({"path/max_relative_coef_difference": difference})
        parent.client.log_artifact(parent.run_id, str(output))
    except BaseException as error:
        parent.fail(error)
        raise
    parent.finish()
    print(f"max |reglab - sklearn| / max |coef| over the path: {difference:.2e}")
    print(f"wrote {output} (MLflow run {parent.run_id})")
    return output


def _sklearn_path(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import lasso_path

    _, coefs, _ = lasso_path(x, y, alphas=alphas, tol=1e-12, max_iter=1_000_000)
    return coefs.T  # (points, features), in the order of `alphas`


def _plot(strengths, ours, theirs, output: Path, data: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.tab10(np.arange(ours.shape[1]) % 10)
    for j in range(ours.shape[1]):
        ax.plot(strengths, theirs[:, j], "-", color=colors[j], lw=1.5)
        ax.plot(strengths, ours[:, j], "o", color=colors[j], ms=5, mfc="none")
    ax.set_xscale("log")
    ax.set_xlabel("regularizer.strength  (= 2 * sklearn alpha)")
    ax.set_ylabel("coefficient")
    ax.set_title(f"Lasso path on {data}: lines sklearn lasso_path, circles reglab (proximal SGD)")
    ax.title.set_fontsize(9)
    ax.axhline(0, color="grey", lw=0.5)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
