"""Zou & Hastie (2005), "Regularization and variable selection via the elastic net", Table 2:
the lasso, the elastic net, ridge and the naive elastic net on examples 1-4, tuned on each
replicate's validation split, fitted by scikit-learn and by reglab's stacked engine on the same
replicates; median model errors with bootstrap standard errors and a paired elastic-net-vs-lasso
comparison, next to the paper's medians.

Data. Replicate ``r`` of example ``k`` is ``data=synthetic data.design=zou_hastie_<k> seed=r
data.standardize=true``: the paper's designs (20/20/200, 100/100/400 or 50/50/400 samples),
every column standardized with its training split's mean and population standard deviation,
so that a training column ``z_j`` has mean 0 and ``sum_i z_ij^2 = n``. The paper normalizes to
``sum_i x_ij^2 = 1`` (its section 2.1; the ``enet`` package's ``normx``): ``u_j = z_j / sqrt(n)``.

Parametrizations. The paper's naive elastic net on centred ``y`` and columns ``u_j``::

    b_naive = argmin |y - U b|^2 + lambda2 |b|^2 + lambda1 |b|_1,      b_EN = (1 + lambda2) b_naive

reglab's (docs/penalties.md, "The penalty convention") on the columns ``z_j``, ``w = b / sqrt(n)``::

    (1/n) |y - Z w - c|^2 + s (a |w|_1 + (1 - a) |w|^2 / 2)

Multiplying reglab's objective by ``n`` and writing ``Z w = U b``, ``|w|_1 = |b|_1 / sqrt(n)``,
``|w|^2 = |b|^2 / n`` gives the paper's with ``lambda1 = sqrt(n) s a`` and ``lambda2 = s (1 - a) / 2``;
the other way round::

    s = lambda1 / sqrt(n) + 2 lambda2,        a = (lambda1 / sqrt(n)) / s

(lasso: ``lambda2 = 0``, ``a = 1``; ridge: ``lambda1 = 0``, ``a = 0``, ``s = 2 lambda2``). The
paper's ``(1 + lambda2)`` is the factor with unit-norm columns, which these are up to ``sqrt(n)``,
and ``lambda2`` is the same number in both scalings. scikit-learn's ``ElasticNet`` minimizes
``|y - Z w|^2 / (2n) + alpha (rho |w|_1 + (1 - rho) |w|^2 / 2)``, which doubled is reglab's with
``alpha = s / 2``, ``rho = a``; ``Ridge`` minimizes ``|y - Z w|^2 + alpha |w|^2``: ``alpha = n s / 2
= n lambda2``. Coefficients go back to the raw features as ``b_j = w_j / sd_j``.

Grid: the paper's ``lambda2`` grid (0, 0.01, 0.1, 1, 10, 100) (its section 3.5), and for each
``lambda2`` a path of ``--path`` values of ``lambda1`` log-spaced from ``lambda1_max = 2 max_j |u_j' y|``
(the smallest that zeroes every coefficient: :func:`reglab.grid.zero_strength` times ``sqrt(n)``)
down to 1e-4 of it, where the paper moves along LARS-EN's path, a continuum. ``lambda2 = 0`` is the
lasso; all six are the naive elastic net and, rescaled, the elastic net. Ridge (``lambda1 = 0``;
the paper does not give its grid) over ``--path`` values of ``lambda2`` log-spaced from 1e-3 to 1e3.
As in the paper's section 5, per replicate and method the point with the lowest validation mean
squared error is selected, and its model error is ``(b - beta)' Sigma (b - beta)`` (its "MSE").

scikit-learn fits every point of every replicate (``ElasticNet`` warm-started along each path,
``tol`` 1e-8). reglab fits ``model=linear`` by proximal gradient descent (ISTA: plain SGD, full
batch, step ``1 / L`` of the replicate's training data, ``regularizer.mode=proximal``,
:data:`STEPS` steps), each point a member of one stacked fit per example
(:func:`reglab.stacked.api.run_variations`). Its proximal step runs once per member and step,
so the full grid on 50 replicates is out of reach on 2 CPU cores (the page states the measured
rate): reglab fits the first ``--reglab-replicates`` replicates at every ``--reglab-every``-th
point of each path (all six ``lambda2``), and is compared with scikit-learn restricted to the same
points and replicates.

Statistics: the standard error of a median is the standard deviation of the medians of
``--bootstrap`` resamples of the replicates (the paper's B = 500); the paired comparison is the
median over replicates of ``ME(elastic net) - ME(lasso)`` with the 2.5 and 97.5 percentiles of
its bootstrap distribution (percentile interval), and the count of replicates where the elastic
net is below, equal to (the selected ``lambda2`` is 0) or above the lasso.

    python scripts/zou_hastie.py --output docs/zou_hastie.md         # the documented run
    python scripts/zou_hastie.py --examples 1 --replicates 5 --reglab-replicates 2 --steps 500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

# Zou & Hastie (2005), Table 2: median MSE (model error) over 50 replicates, as printed
PAPER = {
    1: {"lasso": 3.06, "elastic net": 2.51, "ridge": 4.49, "naive elastic net": 5.70},
    2: {"lasso": 3.87, "elastic net": 3.16, "ridge": 2.84, "naive elastic net": 2.73},
    3: {"lasso": 65.0, "elastic net": 56.6, "ridge": 39.5, "naive elastic net": 41.0},
    4: {"lasso": 46.6, "elastic net": 34.5, "ridge": 64.5, "naive elastic net": 45.9},
}
METHODS = ("lasso", "elastic net", "ridge", "naive elastic net")
LAMBDA2 = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)
LAMBDA1_RANGE = 1e-4  # lambda1 path: lambda1_max down to this times it
RIDGE_RANGE = (1e-3, 1e3)  # ridge's lambda2 path
# reglab's ISTA steps per example: example 4's groups of near-identical columns leave the lasso's
# objective almost flat along within-group differences (curvature ~0.02 against L ~ 12)
STEPS = {1: 1000, 2: 1000, 3: 1000, 4: 3000}


@dataclass
class Replicate:
    """One draw of an example: standardized training and validation arrays (float64 copies of
    reglab's tensors), the training columns' standard deviations, the true coefficients and
    ``Sigma`` in raw units."""

    seed: int
    z: np.ndarray
    y: np.ndarray
    z_val: np.ndarray
    y_val: np.ndarray
    sd: np.ndarray
    coef: np.ndarray
    covariance: np.ndarray


@dataclass
class Grid:
    """The fitted points of one replicate in the paper's units: ``kind`` 0 for the (naive)
    elastic net, 1 for ridge; ``lambda1`` (0 for ridge) and ``lambda2`` per point."""

    kind: np.ndarray
    lambda1: np.ndarray
    lambda2: np.ndarray

    def take(self, rows: np.ndarray) -> Grid:
        return Grid(self.kind[rows], self.lambda1[rows], self.lambda2[rows])


@dataclass
class Fits:
    """Coefficients ``w`` (standardized units, one row per grid point) and intercepts."""

    grid: Grid
    coef: np.ndarray
    intercept: np.ndarray

    def take(self, rows: np.ndarray) -> Fits:
        return Fits(self.grid.take(rows), self.coef[rows], self.intercept[rows])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", default="1,2,3,4", help="comma-separated examples of the paper")
    parser.add_argument("--replicates", type=int, default=50, help="replicates per example (seeds 0..N-1)")
    parser.add_argument("--path", type=int, default=100, help="lambda1 values per lambda2; ridge's lambda2")
    parser.add_argument("--reglab-replicates", type=int, default=5, help="replicates reglab fits (the first)")
    parser.add_argument("--reglab-every", type=int, default=9, help="reglab fits every k-th point of a path")
    parser.add_argument(
        "--steps", type=int, default=None, help="ISTA steps of every reglab fit (default: STEPS)"
    )
    parser.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples (SE of a median)")
    parser.add_argument("--output", default=None, help="also write the results page (markdown) here")
    parser.add_argument("overrides", nargs="*", help="extra reglab overrides, e.g. paths.output_dir=/tmp/x")
    return parser.parse_args(argv)


def data_overrides(example: int) -> list[str]:
    return ["data=synthetic", f"data.design=zou_hastie_{example}", "data.standardize=true"]


def replicate(example: int, seed: int) -> Replicate:
    """The data reglab trains on for ``example`` and ``seed`` (composed from the shipped config)."""
    from reglab.build import instantiate
    from reglab.config import compose

    data = instantiate(compose([*data_overrides(example), f"seed={seed}"]).data, "data")
    data.setup()
    (z, y), (z_val, y_val) = (
        (x.double().numpy(), t.double().numpy().ravel())
        for x, t in (data.tensors["train"], data.tensors["val"])
    )
    return Replicate(seed, z, y, z_val, y_val, data.feature_scale.std, data.coef, data.covariance)


def paper_to_reglab(lambda1: np.ndarray, lambda2: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """reglab's ``(strength, l1_ratio)`` of the paper's ``(lambda1, lambda2)`` with ``n`` training
    samples: ``s = lambda1 / sqrt(n) + 2 lambda2``, ``a = lambda1 / (sqrt(n) s)`` (module docstring)."""
    l1 = np.asarray(lambda1, dtype=np.float64) / np.sqrt(n)
    strength = l1 + 2.0 * np.asarray(lambda2, dtype=np.float64)
    return strength, np.divide(l1, strength, out=np.ones_like(strength), where=strength > 0)


def grid(rep: Replicate, points: int) -> Grid:
    """Six ``lambda1`` paths (one per ``LAMBDA2``) from ``lambda1_max``, then ridge's path."""
    from reglab.grid import zero_strength

    top = np.sqrt(len(rep.y)) * zero_strength(rep.z, rep.y, "regression", 1.0)
    path = top * np.logspace(0, np.log10(LAMBDA1_RANGE), points)
    ridge = np.logspace(*np.log10(RIDGE_RANGE), points)[::-1]
    kind = np.r_[np.zeros(len(LAMBDA2) * points), np.ones(points)]
    lambda1 = np.r_[np.tile(path, len(LAMBDA2)), np.zeros(points)]
    lambda2 = np.r_[np.repeat(LAMBDA2, points), ridge]
    return Grid(kind, lambda1, lambda2)


def reglab_rows(points: int, every: int) -> np.ndarray:
    """The rows of :func:`grid` reglab fits: every ``every``-th point of each path, from its top."""
    return np.flatnonzero(np.tile(np.arange(points) % every == 0, len(LAMBDA2) + 1))


def sklearn_fits(rep: Replicate, points: Grid) -> Fits:
    """scikit-learn at every point: ``ElasticNet(alpha=s/2, l1_ratio=a)`` warm-started along each
    ``lambda1`` path, ``Ridge(alpha=n lambda2)``."""
    from sklearn.linear_model import ElasticNet, Ridge

    n, p = rep.z.shape
    strength, ratio = paper_to_reglab(points.lambda1, points.lambda2, n)
    coef, intercept = np.zeros((len(strength), p)), np.zeros(len(strength))
    model = None
    for i in range(len(strength)):
        if points.kind[i] == 1:
            fitted = Ridge(alpha=n * strength[i] / 2).fit(rep.z, rep.y)
        else:
            if model is None or points.lambda2[i] != points.lambda2[i - 1]:
                model = ElasticNet(warm_start=True, tol=1e-8, max_iter=100_000)
            fitted = model.set_params(alpha=strength[i] / 2, l1_ratio=ratio[i]).fit(rep.z, rep.y)
        coef[i], intercept[i] = fitted.coef_, fitted.intercept_
    return Fits(points, coef, intercept)


def ista_step(rep: Replicate) -> float:
    """``1 / L``, ``L = 2 * largest eigenvalue of [Z 1]'[Z 1] / n``: the Lipschitz constant of the
    mean squared error's gradient with an intercept."""
    design = np.hstack([rep.z, np.ones((len(rep.z), 1))])
    return float(1.0 / (2.0 * np.linalg.eigvalsh(design.T @ design / len(design)).max()))


def steps(example: int, args) -> int:
    return args.steps or STEPS[example]


def reglab_fits(example: int, reps: list[Replicate], grids: list[Grid], args) -> list[Fits]:
    """Every given point of every replicate, one member each of a stacked fit (:func:`steps` ISTA
    steps)."""
    from reglab.stacked.api import run_variations

    epochs = max(1, steps(example, args) // 100)  # data.repeat = 100 full-batch steps per epoch
    base = [
        *data_overrides(example),
        "model=linear",
        "regularizer=elastic",
        "regularizer.mode=proximal",
        "optimizer=sgd",
        "optimizer.momentum=0",
        "callbacks=none",
        "logger=none",
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={epochs}",
        *args.overrides,
    ]
    variations = []
    for rep, points in zip(reps, grids, strict=True):
        step = ista_step(rep)
        strength, ratio = paper_to_reglab(points.lambda1, points.lambda2, len(rep.y))
        variations += [
            {
                "seed": rep.seed,
                "optimizer.lr": step,
                "regularizer.strength": float(s),
                "regularizer.l1_ratio": float(a),
            }
            for s, a in zip(strength, ratio, strict=True)
        ]
    results = iter(run_variations(base, variations, max_members=len(variations), verbose=False))
    fits = []
    for points in grids:
        models = [next(results).model for _ in range(len(points.kind))]
        coef = np.stack([m.weight.detach().double().numpy().ravel() for m in models])
        intercept = np.array([float(m.bias.detach().double()) for m in models])
        fits.append(Fits(points, coef, intercept))
    return fits


def rescaled(fits: Fits, rep: Replicate) -> Fits:
    """The paper's elastic net ``(1 + lambda2) w_naive``, the intercept refitted to the training
    means (``c = mean(y) - mean(z)' w``)."""
    coef = (1.0 + fits.grid.lambda2)[:, None] * fits.coef
    return Fits(fits.grid, coef, rep.y.mean() - coef @ rep.z.mean(axis=0))


def candidates(fits: Fits, rep: Replicate) -> dict[str, Fits]:
    """Each method's points: the lasso is ``lambda2 = 0``, the (naive) elastic net all six."""
    enet = fits.take(np.flatnonzero(fits.grid.kind == 0))
    return {
        "lasso": enet.take(np.flatnonzero(enet.grid.lambda2 == 0)),
        "elastic net": rescaled(enet, rep),
        "ridge": fits.take(np.flatnonzero(fits.grid.kind == 1)),
        "naive elastic net": enet,
    }


def model_error(w: np.ndarray, rep: Replicate) -> float:
    """``(b - beta)' Sigma (b - beta)`` with ``b = w / sd`` in raw feature units."""
    difference = w / rep.sd - rep.coef
    return float(difference @ rep.covariance @ difference)


def select(fits: Fits, rep: Replicate) -> dict[str, tuple[float, float, float]]:
    """Per method ``(model error, lambda1, lambda2)`` of the point with the lowest validation MSE."""
    chosen = {}
    for method, options in candidates(fits, rep).items():
        residuals = rep.z_val @ options.coef.T + options.intercept - rep.y_val[:, None]
        best = int(np.argmin(np.mean(residuals**2, axis=0)))
        chosen[method] = (
            model_error(options.coef[best], rep),
            options.grid.lambda1[best],
            options.grid.lambda2[best],
        )
    return chosen


def errors(chosen: dict[str, tuple[float, float, float]]) -> dict[str, float]:
    return {method: error for method, (error, _, _) in chosen.items()}


def bootstrap_medians(values: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``draws`` resamples (with replacement, same size) of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    return np.median(values[rng.integers(0, len(values), size=(draws, len(values)))], axis=1)


def median_se(values: np.ndarray, draws: int, seed: int = 0) -> float:
    """Bootstrap standard error of the median: the standard deviation (ddof 1) of
    :func:`bootstrap_medians`."""
    return float(np.std(bootstrap_medians(values, draws, np.random.default_rng(seed)), ddof=1))


def paired(elastic: np.ndarray, lasso: np.ndarray, draws: int, seed: int = 0) -> dict[str, float]:
    """Median of ``elastic - lasso`` over replicates, its 95 % bootstrap percentile interval,
    and how many differences are below / equal to / above 0."""
    difference = np.asarray(elastic) - np.asarray(lasso)
    low, high = np.percentile(bootstrap_medians(difference, draws, np.random.default_rng(seed)), [2.5, 97.5])
    return {
        "median": float(np.median(difference)),
        "low": float(low),
        "high": float(high),
        "below": int((difference < 0).sum()),
        "equal": int((difference == 0).sum()),
        "above": int((difference > 0).sum()),
    }


def summarize(errors: list[dict[str, float]], draws: int) -> dict:
    """Medians with bootstrap SEs per method, and the paired elastic-net-vs-lasso comparison."""
    table = {m: np.array([e[m] for e in errors]) for m in METHODS}
    return {
        "n": len(errors),
        "median": {m: float(np.median(v)) for m, v in table.items()},
        "se": {m: median_se(v, draws) for m, v in table.items()},
        "paired": paired(table["elastic net"], table["lasso"], 4 * draws),
    }


def ordering(medians: dict[str, float]) -> str:
    return " < ".join(sorted(medians, key=medians.get))


def close(summary: dict) -> list[str]:
    """Neighbours in :func:`ordering` whose medians differ by less than the larger of their two
    bootstrap standard errors, as ``"a ~ b"``."""
    ranked = sorted(METHODS, key=summary["median"].get)
    return [
        f"{a} ~ {b}"
        for a, b in zip(ranked, ranked[1:], strict=False)
        if summary["median"][b] - summary["median"][a] < max(summary["se"][a], summary["se"][b])
    ]


def objective(fits: Fits, rep: Replicate) -> np.ndarray:
    """The paper's objective ``|y - U b - c|^2 + lambda2 |b|^2 + lambda1 |b|_1`` of every point, with
    ``b = sqrt(n) w`` (ridge: ``lambda1 = 0``)."""
    n = len(rep.y)
    residuals = rep.y[:, None] - rep.z @ fits.coef.T - fits.intercept
    return (
        np.sum(residuals**2, axis=0)
        + fits.grid.lambda2 * n * np.sum(fits.coef**2, axis=1)
        + fits.grid.lambda1 * np.sqrt(n) * np.sum(np.abs(fits.coef), axis=1)
    )


def agreement(ours: list[dict], theirs: list[dict], pairs: list[tuple[Fits, Fits, Replicate]]) -> dict:
    """reglab against scikit-learn on the same points and replicates: how many (replicate,
    method) select the same point, the largest relative gap of the selected model errors, and
    reglab's relative excess of the objective ``F_reglab / F_sklearn - 1`` over all points."""
    same = sum(a[m][1:] == b[m][1:] for a, b in zip(ours, theirs, strict=True) for m in METHODS)
    gaps = [abs(a[m][0] / b[m][0] - 1) for a, b in zip(ours, theirs, strict=True) for m in METHODS]
    excess = np.concatenate([objective(r, rep) / objective(s, rep) - 1 for r, s, rep in pairs])
    return {
        "same": int(same),
        "total": len(gaps),
        "error_gap": float(max(gaps)),
        "objective_median": float(np.median(excess)),
        "objective_max": float(np.max(excess)),
        "points": len(excess),
    }


def run_example(example: int, args) -> dict:
    reps = [replicate(example, seed) for seed in range(args.replicates)]
    started = time.perf_counter()
    full = [sklearn_fits(rep, grid(rep, args.path)) for rep in reps]
    sk_seconds = time.perf_counter() - started
    sklearn = summarize([errors(select(f, r)) for f, r in zip(full, reps, strict=True)], args.bootstrap)
    rows = reglab_rows(args.path, args.reglab_every)
    subset = reps[: args.reglab_replicates]
    started = time.perf_counter()
    ours = reglab_fits(example, subset, [f.grid.take(rows) for f in full[: len(subset)]], args)
    rl_seconds = time.perf_counter() - started
    theirs = [f.take(rows) for f in full[: len(subset)]]
    chosen_ours = [select(f, r) for f, r in zip(ours, subset, strict=True)]
    chosen_theirs = [select(f, r) for f, r in zip(theirs, subset, strict=True)]
    print(
        f"example {example}: scikit-learn {len(full) * len(full[0].coef)} fits in {sk_seconds:.0f} s, "
        f"reglab {len(ours) * len(ours[0].coef)} fits in {rl_seconds:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return {
        "example": example,
        "sklearn": sklearn,
        "reglab": summarize([errors(c) for c in chosen_ours], args.bootstrap),
        "sklearn_subset": summarize([errors(c) for c in chosen_theirs], args.bootstrap),
        "agreement": agreement(chosen_ours, chosen_theirs, list(zip(ours, theirs, subset, strict=True))),
        "seconds": {"sklearn": sk_seconds, "reglab": rl_seconds},
    }


def listed(examples: list[int]) -> str:
    """``[1, 3, 4]`` -> ``"examples 1, 3 and 4"``, ``[2]`` -> ``"example 2"``, ``[]`` -> ``"no example"``."""
    names = [str(e) for e in examples]
    if len(names) < 2:
        return f"example {names[0]}" if names else "no example"
    return "examples " + ", ".join(names[:-1]) + " and " + names[-1]


def cell(summary: dict, method: str) -> str:
    return f"{summary['median'][method]:.2f} ({summary['se'][method]:.2f})"


def interval(summary: dict) -> str:
    d = summary["paired"]
    return (
        f"{d['median']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | {d['below']} / {d['equal']} / {d['above']}"
    )


def findings(results: list[dict], key: str) -> list[str]:
    """What the numbers of one column (``sklearn`` or ``reglab``) show, example by example."""
    examples = [r["example"] for r in results]
    below = [r["example"] for r in results if r[key]["median"]["elastic net"] < r[key]["median"]["lasso"]]
    paired_below = [r["example"] for r in results if r[key]["paired"]["high"] < 0]
    paired_above = [r["example"] for r in results if r[key]["paired"]["low"] > 0]
    paired_zero = [e for e in examples if e not in paired_below + paired_above]
    same_order = [
        r["example"] for r in results if ordering(r[key]["median"]) == ordering(PAPER[r["example"]])
    ]
    same_best = [
        r["example"]
        for r in results
        if ordering(r[key]["median"]).split(" < ")[0] == ordering(PAPER[r["example"]]).split(" < ")[0]
    ]
    ratios = sorted(
        (r[key]["median"][m] / PAPER[r["example"]][m], r["example"], m) for r in results for m in METHODS
    )
    lower = sum(ratio < 1 for ratio, _, _ in ratios)
    (low, e_low, m_low), (high, e_high, m_high) = ratios[0], ratios[-1]
    return [
        f"the elastic net's median model error is below the lasso's in {listed(below)} "
        f"(the paper: all four);",
        f"paired over the same replicates, the 95 % interval of the median difference (elastic net - "
        f"lasso) lies below 0 in {listed(paired_below)}, contains 0 in {listed(paired_zero)} "
        f"and lies above 0 in {listed(paired_above)};",
        f"the four medians are in the paper's order in {listed(same_order)}; the lowest median "
        f"is the paper's best method in {listed(same_best)};",
        f"{lower} of the {len(ratios)} medians are below the paper's; their ratio to the paper's ranges "
        f"from {low:.2f} (example {e_low}, {m_low}) to {high:.2f} (example {e_high}, {m_high}).",
    ]


def render(results: list[dict], args, command: str, seconds: float) -> str:
    """The results page: settings, the two tables, the orderings and the findings."""
    first = results[0]
    n, r = first["sklearn"]["n"], first["reglab"]["n"]
    per_path = len(range(0, args.path, args.reglab_every))
    fits = len(results) * n * (len(LAMBDA2) + 1) * args.path
    ours = len(results) * r * (len(LAMBDA2) + 1) * per_path
    sk_seconds, rl_seconds = (sum(res["seconds"][k] for res in results) for k in ("sklearn", "reglab"))
    hours = rl_seconds / ours * fits / 3600
    slow = (
        "; example 4's groups of near-identical columns make ISTA slow along within-group differences"
        if any(res["example"] == 4 for res in results)
        else ""
    )
    schedule = ", ".join(f"{steps(res['example'], args)} (example {res['example']})" for res in results)
    lines = [
        "# Zou & Hastie (2005), examples 1-4: lasso, elastic net, ridge, naive elastic net",
        "",
        f"`{command}` ({date.today().isoformat()}, {os.cpu_count()} CPU cores, {seconds:.0f} s in all: "
        f"scikit-learn {fits:,} fits in {sk_seconds:.0f} s, reglab {ours:,} fits in {rl_seconds:.0f} s; "
        "this page is the script's output).",
        "",
        "- **Data**: `data=synthetic data.design=zou_hastie_<k> data.standardize=true seed=<r>`, the "
        "paper's designs (example 1: coefficients (3, 1.5, 0, 0, 2, 0, 0, 0), correlation 0.5^|i-j|, "
        "sigma 3, 20/20/200 samples; 2: all eight 0.85; 3: 40 features of equal correlation 0.5, "
        "sigma 15, 100/100/400; 4: three groups of five nearly identical features, sigma 15, 50/50/400); "
        "every column standardized on its training split (mean 0, variance 1, i.e. `sqrt(n)` times the "
        "paper's unit-norm columns, which leaves `lambda2` and the `(1 + lambda2)` rescaling the paper's).",
        f"- **Grid**: `lambda2` in {', '.join(f'{v:g}' for v in LAMBDA2)}, each with {args.path} values of "
        f"`lambda1` log-spaced from the one that zeroes every coefficient down to {LAMBDA1_RANGE:g} of it; "
        f"`lambda2 = 0` is the lasso, all six the naive elastic net and, times `(1 + lambda2)`, the elastic "
        f"net; ridge over {args.path} values of `lambda2` from {RIDGE_RANGE[0]:g} to {RIDGE_RANGE[1]:g}. "
        "reglab's strength and l1_ratio: `s = lambda1 / sqrt(n) + 2 lambda2`, `a = lambda1 / (sqrt(n) s)`; "
        "scikit-learn's `ElasticNet(alpha=s/2, l1_ratio=a)`, `Ridge(alpha=n lambda2)` "
        "(`scripts/zou_hastie.py`, docstring).",
        "- **Selection and error**: per replicate and method the point with the lowest validation MSE; "
        "its model error `(b - beta)' Sigma (b - beta)` in raw units (the paper's MSE). Medians over "
        f"replicates with bootstrap standard errors ({args.bootstrap} resamples of the replicates), "
        "as in the paper's Table 2.",
        f"- **Fits**: scikit-learn on all {n} replicates and every point (coordinate descent, warm-started "
        f"along each path, `tol` 1e-8). reglab (proximal gradient descent, stacked members of "
        f"`run_variations`, full-batch steps of `1/L`: {schedule}) on the first {r} replicates and one "
        f"point in {args.reglab_every} of each path ({per_path} `lambda1` per `lambda2`, {per_path} ridge "
        f"points{slow}): its proximal step runs once per member and step, and at this run's rate the "
        f"full grid on {n} replicates would take about {hours:.1f} hours. The last column is scikit-learn "
        "on exactly reglab's replicates and points.",
        "",
        "## Median model error (bootstrap standard error)",
        "",
        f"| example | method | paper (50 reps) | scikit-learn ({n} reps) | scikit-learn / paper | "
        f"reglab ({r} reps, subset) | scikit-learn (same {r} reps, subset) |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in results:
        e = res["example"]
        for m in METHODS:
            ratio = res["sklearn"]["median"][m] / PAPER[e][m]
            lines.append(
                f"| {e} | {m} | {PAPER[e][m]:.2f} | {cell(res['sklearn'], m)} | {ratio:.2f} | "
                f"{cell(res['reglab'], m)} | {cell(res['sklearn_subset'], m)} |"
            )
    lines += [
        "",
        "## Elastic net minus lasso, paired over replicates",
        "",
        "Median over replicates of `ME(elastic net) - ME(lasso)` with its 95 % bootstrap percentile "
        f"interval ({4 * args.bootstrap} resamples), and the replicates where the elastic net's error is "
        "below / equal to (its selected `lambda2` is 0: the lasso) / above the lasso's. The paper gives "
        "medians only: its column is the difference of its two medians.",
        "",
        f"| example | paper | scikit-learn ({n} reps) | below / equal / above | reglab ({r} reps) "
        "| below / equal / above |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        e = res["example"]
        paper = PAPER[e]["elastic net"] - PAPER[e]["lasso"]
        lines.append(f"| {e} | {paper:+.2f} | {interval(res['sklearn'])} | {interval(res['reglab'])} |")
    lines += [
        "",
        "## Order of the four medians",
        "",
        "In brackets: neighbours whose medians differ by less than the larger of their two standard errors.",
        "",
    ]
    for res in results:
        e = res["example"]
        sk, ours = (
            f"{ordering(res[k]['median'])} [{'; '.join(close(res[k])) or '-'}]" for k in ("sklearn", "reglab")
        )
        lines.append(f"- example {e}: paper {ordering(PAPER[e])}; scikit-learn {sk}; reglab {ours}")
    lines += ["", "## What the numbers show", "", f"scikit-learn, {n} replicates per example:", ""]
    lines += [f"- {line}" for line in findings(results, "sklearn")]
    lines += ["", f"reglab, {r} replicates per example, on its subset of the grid:", ""]
    lines += [f"- {line}" for line in findings(results, "reglab")]
    lines += ["", "reglab against scikit-learn on the same replicates and points:", ""]
    for res in results:
        a = res["agreement"]
        lines.append(
            f"- example {res['example']}: the same point selected in {a['same']} of {a['total']} "
            f"(replicate, method) pairs; selected model errors within {a['error_gap']:.1e} relative; "
            f"objective (the paper's) of reglab / of scikit-learn - 1 over all {a['points']} points: "
            f"median {a['objective_median']:.1e}, largest {a['objective_max']:.1e}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    results = [run_example(int(e), args) for e in args.examples.split(",")]
    page = render(
        results, args, " ".join(["python scripts/zou_hastie.py", *argv]), time.perf_counter() - started
    )
    print(page)
    if args.output:
        Path(args.output).write_text(page)
    return results


if __name__ == "__main__":
    main()
