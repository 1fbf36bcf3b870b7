"""Section 5, ``stacked``: ``hydra/launcher=stacked`` against the basic launcher.

- The ablation, side by side in one run: ``experiment=ablation`` over 3 seeds, 3 of its 4
  strengths, its first learning rate, without batch norm (4 regularizers x 3 strengths x 2
  dropout rates x 3 seeds = 72 runs, 30 epochs each; ``--quick``: 4 runs of 2 epochs), with each
  launcher into its own store; wall time, FINISHED runs, and the paired difference of test
  accuracy per job (stacked - basic) with its 95 % t interval.
- The floor of the ablation's stack on this machine: its 600 training steps of 72 digits MLPs
  (half with dropout 0.3) in a hand-written stacked loop (``vmap`` forward, ``backward``, the
  stacked Adam; no Lightning, validation, metrics, penalty, MLflow or Hydra), without dropout,
  with reglab's seeded masks and with torch's global generator's (the seeded masks' cost), and
  the matrix products alone (``torch.bmm``, forward and both backward products).
- Per-member cost against K: stacks of K = 1, 8, 32, 72 digits MLPs (seeds 0..K-1,
  ``regularizer=l1`` as the hand loop) trained in this process; the stack's fit seconds per
  optimizer step and member, next to the hand-written single-model loop's seconds per step.
- Where a stacked sweep's time goes (start-up, planning, training, bookkeeping per member) for
  240 and 1,000 synthetic runs, beside the basic launcher's: :mod:`bench.bookkeeping`.
"""

from __future__ import annotations

import math
import sqlite3
import sys
from pathlib import Path
from time import perf_counter

from bench.bookkeeping import section_bookkeeping
from bench.children import create_store, run_child
from bench.common import log
from bench.stats import median

ABLATION = [
    "experiment=ablation",
    "seed=0,1,2",
    "batchnorm=false",
    "optimizer.lr=1e-3",
    "regularizer.strength=2e-2,2e-3,2e-4",
]
QUICK_ABLATION = ["regularizer=none,l1", "dropout=0,0.3", "seed=0", "trainer.max_epochs=2"]
K_VALUES = (1, 8, 32, 72)
QUICK_K = (1, 4)
LAYERS = [(64, 256), (256, 256), (256, 10)]  # the digits MLP's (inputs, outputs) per layer


def finished_runs(database: Path) -> dict[str, float]:
    """``reglab.overrides`` tag -> test/acc of every FINISHED child run in the store."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT t.value, m.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "AND t.key = 'reglab.overrides' JOIN latest_metrics m ON m.run_uuid = r.run_uuid "
            "AND m.key = 'test/acc' WHERE r.status = 'FINISHED'"
        ).fetchall()
    return {_job(tag): value for tag, value in rows}


def _job(overrides: str) -> str:
    """A job's overrides without where it wrote (which differs between the two sweeps)."""
    return " ".join(o for o in overrides.split() if not o.startswith("paths."))


def paired_interval(differences: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval of paired differences."""
    from scipy import stats

    n = len(differences)
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1)) if n > 1 else 0.0
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    return mean, mean - half, mean + half


def ablation(grid: list[str], work: Path) -> dict:
    """The grid with each launcher (basic first), into separate stores."""
    out = {}
    for label, launcher in (("basic", ["hydra/launcher=basic"]), ("stacked", ["hydra/launcher=stacked"])):
        output = work / f"stacked_{label}"
        create_store(output)
        log(f"stacked: {label} launcher, {' '.join(grid)}")
        measured = run_child(
            [sys.executable, "train.py", "-m", *grid, *launcher, f"paths.output_dir={output}"],
            work,
            timeout=3600,
        )
        out[label] = {"wall_s": measured["wall_s"], "runs": finished_runs(output / "mlflow.db")}
    basic, stacked = out["basic"]["runs"], out["stacked"]["runs"]
    common = sorted(set(basic) & set(stacked))
    diffs = [stacked[k] - basic[k] for k in common]
    mean, low, high = paired_interval(diffs) if len(diffs) > 1 else (math.nan,) * 3
    return {
        "grid": " ".join(grid),
        "basic_wall_s": out["basic"]["wall_s"],
        "stacked_wall_s": out["stacked"]["wall_s"],
        "speedup": out["basic"]["wall_s"] / out["stacked"]["wall_s"],
        "basic_finished": len(basic),
        "stacked_finished": len(stacked),
        "paired_jobs": len(common),
        "acc_difference": mean,
        "acc_difference_ci": [low, high],
    }


def per_member_cost(k_values, epochs: int, repeats: int) -> dict:
    """Per-step, per-member seconds of stacks of K members, and the hand loop's per step."""
    from bench.loops import hand_loop
    from reglab.config import compose
    from reglab.pipeline import prepare
    from reglab.stacked.api import run_stacked

    base = ["regularizer=l1", "logger=none", "callbacks=none", f"trainer.max_epochs={epochs}"]
    cfg = compose([*base, "seed=0"])
    data = prepare(cfg).datamodule
    hand = [hand_loop(cfg, data, epochs) for _ in range(repeats)]
    hand_step = median([seconds / steps for seconds, _, steps in hand])
    steps = hand[0][2]
    rows = []
    for k in k_values:
        fits = []
        for _ in range(repeats):
            results = run_stacked([[*base, f"seed={s}"] for s in range(k)], verbose=False)
            fits.append(results[0].metrics["fit/seconds"])
        per_member = median(fits) / steps / k
        rows.append({"members": k, "fit_s": median(fits), "per_member_step_ms": 1e3 * per_member})
        log(f"stacked: K={k}: {1e3 * per_member:.3f} ms per member step (hand loop {1e3 * hand_step:.3f})")
    return {"epochs": epochs, "steps": steps, "hand_loop_step_ms": 1e3 * hand_step, "rows": rows}


def stack_floor(members: int, steps: int) -> dict:
    """Seconds of the ablation's stack trained by a hand-written loop (see the docstring)."""
    import torch
    from torch import nn
    from torch.func import functional_call, vmap

    from reglab.dropout import SeededDropout, key_dropouts
    from reglab.models import MLP
    from reglab.stacked.optim import StackedOptimizer

    class GlobalGeneratorDropout(nn.Module):
        """The masks of torch's global generator (``vmap(randomness="different")``): the cost
        reglab's seeded masks are compared with."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("p", torch.zeros(()))

        def forward(self, x):
            return x * (torch.rand_like(x) >= self.p) / (1 - self.p)

    def loop(dropout: str) -> float:
        """``dropout``: ``none``, ``seeded`` (reglab's, :mod:`reglab.dropout`) or ``global``."""
        torch.manual_seed(0)
        hidden = [o for _, o in LAYERS[:-1]]
        model = MLP(LAYERS[0][0], LAYERS[-1][1], hidden=hidden, dropout=0.0 if dropout == "none" else 0.3)
        names = key_dropouts(model, 0)
        if dropout == "global":
            for parent in list(model.modules()):
                for child_name, child in list(parent.named_children()):
                    if isinstance(child, SeededDropout):
                        setattr(parent, child_name, GlobalGeneratorDropout())
        every_other = torch.tensor([0.3 * (k % 2) for k in range(members)])
        buffers = {n: every_other if n.endswith(".p") else torch.arange(members) for n in names}
        buffers = {n: b for n, b in buffers.items() if dropout == "seeded" or n.endswith(".p")}
        params = {n: nn.Parameter(0.05 * torch.randn(members, *p.shape)) for n, p in model.named_parameters()}
        randomness = "different" if dropout == "global" else "error"
        forward = vmap(lambda p, b, x: functional_call(model, (p, b), (x,)), randomness=randomness)
        lr, zero = (torch.full((members,), v, dtype=torch.float64) for v in (1e-3, 0.0))
        group = {"params": list(params.values()), "decay": True}
        optimizer = StackedOptimizer([group], "adam", lr=lr, weight_decay=zero, momentum=zero)
        x, y = torch.randn(members, 64, 64), torch.randint(0, 10, (members, 64))
        started = perf_counter()
        for _ in range(steps):
            loss = vmap(nn.functional.cross_entropy)(forward(params, buffers, x), y).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return perf_counter() - started

    def products() -> float:
        weights = [torch.randn(members, i, o) for i, o in LAYERS]
        inputs = [torch.randn(members, 64, i) for i, _ in LAYERS]
        grads = [torch.randn(members, 64, o) for _, o in LAYERS]
        started = perf_counter()
        for _ in range(steps):
            for w, x, g in zip(weights, inputs, grads, strict=True):
                torch.bmm(x, w), torch.bmm(x.transpose(1, 2), g), torch.bmm(g, w.transpose(1, 2))
        return perf_counter() - started

    flop = steps * sum(3 * 2 * members * 64 * i * o for i, o in LAYERS)  # 3 products of 2 flop a term
    seconds = {
        "products": products(),
        "no_dropout": loop("none"),
        "dropout": loop("seeded"),
        "global_generator_dropout": loop("global"),
    }
    log(f"stacked: floor {seconds}")
    return {
        "members": members,
        "steps": steps,
        "seconds": seconds,
        "products_gflops": flop / seconds["products"] / 1e9,
    }


def section_stacked(args, work: Path) -> dict:
    quick = args.quick
    out = {"ablation": ablation(QUICK_ABLATION if quick else ABLATION, work)}
    out["floor"] = stack_floor(4, 20) if quick else stack_floor(72, 600)
    out["scaling"] = per_member_cost(QUICK_K if quick else K_VALUES, 1 if quick else 3, args.repeats)
    out["bookkeeping"] = section_bookkeeping(quick, work)
    return out
