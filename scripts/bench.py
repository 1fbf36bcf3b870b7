"""reglab performance benchmark: framework overhead, penalty cost, start-up and sweeps.

    python scripts/bench.py                          # full benchmark (~7 min on 2 cores)
    python scripts/bench.py --repeats 5 --wait-for-quiet 600 --json outputs/bench.json  # BENCHMARKS.md
    python scripts/bench.py --quick --json /tmp/b.json  # tiny sizes: a CI smoke test (~1 min)
    python scripts/bench.py --sections loop,penalty  # some sections only

Needs only the project's environment: no services, no network; everything it writes
goes to a temporary folder (the repository's ``outputs/`` is not touched). It prints one
markdown table per section, then profiler findings and the targets marked met / NOT met;
``--json PATH`` writes all numbers. Times are medians over ``--repeats`` (default 3; the
penalty section takes 5 x repeats short rounds, full sweeps ``--sweep-repeats``, default
1), with the interquartile range of each ratio; every ratio is formed from measurements
taken in the same process, interleaved (A, B, A, B, ...), so that slow drifts of the
machine affect both sides alike. Noise from other processes is not cancelled: on 2 cores
with torch's 2 OpenMP threads, another busy process makes small-model steps several times
slower. So the benchmark prints the load average before and after and, per section, the
CPU cores that other processes kept busy meanwhile (from /proc/stat); ``--wait-for-quiet
S`` first waits up to S seconds for a 1-minute load average below 1.0. ``--quick`` runs
tiny sizes and its subprocess sections (startup, sweep) at the same time: a smoke test of
every code path, its numbers are not measurements.

Sections:

1. ``loop``: ``reglab.run([... "logger=none", "callbacks=none", "trainer.max_epochs=20"])``
   (a real ``lightning.Trainer`` fitting ``RegularizedModule``; its ``fit/seconds``) vs a
   minimal hand-written PyTorch loop doing the same work: the same model (same init),
   the same data tensors, the same batch order per epoch, the same L1 penalty (1e-4,
   applied as reglab does: ``strength * sign(w)`` added to the gradients after backward,
   the value once per epoch), Adam, and the same per-epoch validation pass on the val
   split.
   On digits (MLP 64-256-256-10, batch 64) and MNIST-1D (MLP 40-256-256-10, batch 64).
   The final ``val/loss`` of both is compared as a check that they did the same work.
2. ``penalty``: the training step (forward + loss + backward + the penalty's gradient
   in ``on_before_optimizer_step`` + Adam step + the regularizer's ``after_step``) in a
   tight loop through ``RegularizedModule.training_step`` for ``none``, ``l1``, ``l2``, ``elastic`` and
   ``group_lasso`` (penalty mode), as a ratio to ``none``: the MLP on digits, ``cnn1d``
   on MNIST-1D and ``convnet`` on random 1x28x28 tensors.
3. ``startup``: ``python train.py trainer.max_epochs=1`` with an existing store, as a
   subprocess: wall time and peak RSS (``wait4`` rusage); the same run through a
   wrapper that calls ``reglab.cli.main`` with timers on the functions of each phase
   (import, config, data, store, build, fit, test, logging, hydra, exit); the default
   ``python train.py`` (100 epochs, early stopping); ``python -X importtime``'s
   cumulative import time per top-level package.
4. ``sweep``: ``python train.py -m regularizer=none,l1,l2,elastic dropout=0,0.3,0.5
   trainer.max_epochs=2`` (12 runs; ``--quick``: 2 runs) with the basic launcher and
   with ``hydra/launcher=joblib hydra.launcher.n_jobs=2``: wall per run and per-run
   overhead = (wall - sum of the runs' ``fit/seconds`` read from the MLflow store) / runs;
   full mode also runs the 2-run grid to split it into a fixed and a marginal part, and
   the 12-run grid through the phase wrapper (where the overhead goes).

Targets (printed as met / NOT met): fit <= 1.25x the hand loop on the digits MLP
(stretch 1.1x); penalty overhead <= 5 % for l1 / l2 / elastic on the MLP; default
``python train.py`` <= 8 s wall with an existing store; per-run sweep overhead <= 0.5 s
with the basic launcher.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("loop", "penalty", "startup", "sweep")
SUBPROCESS_SECTIONS = ("startup", "sweep")
REGULARIZERS = ("none", "l1", "l2", "elastic", "group_lasso")
SWEEP_GRID = ["regularizer=none,l1,l2,elastic", "dropout=0,0.3,0.5"]
QUICK_SWEEP_GRID = ["regularizer=none,l1"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]

TARGET_LOOP, STRETCH_LOOP = 1.25, 1.10
TARGET_PENALTY = 1.05
TARGET_DEFAULT_RUN_S = 8.0
TARGET_SWEEP_OVERHEAD_S = 0.5


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values) -> list[float]:
    """Interquartile range (min-max below 4 values): how much a median can be trusted."""
    values = sorted(v for v in values if v is not None)
    if len(values) < 4:
        return [values[0], values[-1]] if values else []
    quartiles = statistics.quantiles(values, n=4)
    return [quartiles[0], quartiles[2]]


def load() -> float:
    return os.getloadavg()[0]


def cpu_snapshot() -> tuple[float, float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its reaped
    children, wall clock): two snapshots give the load that other processes put on the
    machine meanwhile (see :func:`foreign_load`)."""
    busy = 0.0
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError):
        pass
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, perf_counter()


def foreign_load(before: tuple[float, float, float], after: tuple[float, float, float]) -> float | None:
    """Average number of cores busy with other processes between two snapshots."""
    if not before[0]:
        return None
    wall = after[2] - before[2]
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall) if wall > 0 else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {load():.2f}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- machine


def machine_info() -> dict:
    import lightning
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
    for name in ("mlflow", "hydra", "torchmetrics"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # not installed / no version: not part of the result
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions,
    }


# ----------------------------------------------------------------------------- 1. loop


def _hand_loop(cfg, data, epochs: int) -> tuple[float, float, int]:
    """A minimal PyTorch loop doing what reglab's fit does; returns (seconds, final val
    loss, optimizer steps). Same init (seeded like reglab.pipeline.train), same batch
    order (InMemoryBatches: randperm from a generator seeded with data.seed, a trailing
    single-sample batch skipped), same L1 penalty (as reglab applies it: its sub-gradient
    added to the gradients after backward, its value computed once per epoch), same
    per-epoch validation pass."""
    import torch
    import torch.nn.functional as F

    from reglab.pipeline import build_model

    x, y = data.tensors["train"]
    xv, yv = data.tensors["val"]
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    weights = [p for p in model.parameters() if p.ndim >= 2]
    strength = float(cfg.regularizer.strength)
    n, b, eb = len(x), int(cfg.data.batch_size), int(cfg.data.eval_batch_size)
    full, rest = divmod(n, b)
    n_batches = full + (1 if rest > 1 else 0)
    generator = torch.Generator().manual_seed(int(cfg.data.seed))
    val_loss = float("nan")
    started = perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.optimizer.lr))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for i in range(n_batches):
            index = order[i * b : (i + 1) * b]
            xb, yb = x.index_select(0, index), y.index_select(0, index)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                grads = [w.grad for w in weights]
                torch._foreach_add_(grads, torch._foreach_sign(weights), alpha=strength)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            penalty = strength * torch.stack(torch._foreach_norm(weights, 1)).sum()
            sums = torch.zeros(2)
            for start in range(0, len(xv), eb):
                out, target = model(xv[start : start + eb]), yv[start : start + eb]
                sums += torch.stack(
                    (F.cross_entropy(out, target, reduction="sum"), (out.argmax(1) == target).sum().float())
                )
            val_loss, _ = torch.stack((sums[0] / len(xv), penalty)).tolist()
    return perf_counter() - started, val_loss, epochs * n_batches


def _module_loop(cfg, data, epochs: int) -> float:
    """The hand loop driving reglab's RegularizedModule (training_step with its penalty and
    epoch sums, configure_optimizers' two parameter groups, after_step, validation_step with
    its torchmetrics) without Lightning: reglab's own per-step cost."""
    import torch
    from hydra.utils import instantiate

    from reglab.module import RegularizedModule
    from reglab.pipeline import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    module = RegularizedModule(
        model, instantiate(cfg.regularizer), instantiate(cfg.optimizer), data.task, data.n_outputs
    )
    optimizer = module.configure_optimizers()
    train, val = data.train_dataloader(), data.val_dataloader()
    lr = optimizer.param_groups[0]["lr"]
    started = perf_counter()
    for _ in range(epochs):
        module.train()
        for i, batch in enumerate(train):
            loss = module.training_step(batch, i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            module.on_before_optimizer_step(optimizer)
            optimizer.step()
            module.regularizer.after_step(module.penalized, lr)
        module.eval()
        with torch.no_grad():
            for i, batch in enumerate(val):
                module.validation_step(batch, i)
            values = module.val_metrics.compute()
            module.val_metrics.reset()
            torch.stack([v.float() for v in values.values()]).tolist()
    return perf_counter() - started


def _minimal_lightning(cfg, data, epochs: int) -> float:
    """A minimal LightningModule (the hand loop's step, penalty and validation loss) fitted by
    a Trainer built from the same ``trainer`` config: Lightning's own per-step cost."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    from reglab.pipeline import build_model

    strength = float(cfg.regularizer.strength)

    class Minimal(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.penalized = [p for p in model.parameters() if p.ndim >= 2]
            self.val_sum = torch.zeros(2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        @torch.no_grad()
        def on_before_optimizer_step(self, optimizer):
            grads = [w.grad for w in self.penalized]
            torch._foreach_add_(grads, torch._foreach_sign(self.penalized), alpha=strength)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.model(x)
            self.val_sum += torch.stack(
                (F.cross_entropy(out, y, reduction="sum"), (out.argmax(1) == y).sum().float())
            )

        def on_validation_epoch_end(self):
            self.val_sum.tolist()
            self.val_sum.zero_()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=float(cfg.optimizer.lr))

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    trainer = instantiate(
        cfg.trainer,
        max_epochs=epochs,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        default_root_dir=str(Path(cfg.paths.output_dir) / "minimal"),
    )
    started = perf_counter()
    trainer.fit(
        Minimal(model), train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader()
    )
    return perf_counter() - started


def _decomposition(first, epochs: int, repeats: int) -> dict:
    """hand loop < + reglab's module (no Lightning) < minimal LightningModule < reglab fit,
    interleaved, digits MLP: where the loop ratio comes from."""
    import reglab

    cfg, data = first.config, first.data
    overrides = first.overrides
    variants = {
        "hand loop": lambda: _hand_loop(cfg, data, epochs)[0],
        "hand loop through RegularizedModule (no Lightning)": lambda: _module_loop(cfg, data, epochs),
        "minimal LightningModule, same Trainer config": lambda: _minimal_lightning(cfg, data, epochs),
        "reglab fit": lambda: reglab.run(overrides).metrics["fit/seconds"],
    }
    for run in variants.values():  # warm-up
        run()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(run())
    steps = epochs * len(data.train_dataloader())
    hand = times["hand loop"]
    return {
        name: {
            "s": median(t),
            "ms_per_step": 1e3 * median(t) / steps,
            "ratio_to_hand": median([a / b for a, b in zip(t, hand, strict=True)]),
            "ratio_spread": spread([a / b for a, b in zip(t, hand, strict=True)]),
        }
        for name, t in times.items()
    }


def _mnist1d_available() -> str | None:
    """None when data=mnist1d can run, else why not."""
    if not (ROOT / "conf" / "data" / "mnist1d.yaml").is_file():
        return "conf/data/mnist1d.yaml not found"
    try:
        import mnist1d  # noqa: F401
    except ImportError:
        return "the mnist1d package is not installed"
    return None


def _profile_fit(overrides: list[str], steps_hint: int) -> dict:
    """cProfile one reglab fit; own time grouped by package, per optimizer step."""
    import cProfile
    import pstats

    import reglab

    profiler = cProfile.Profile()
    profiler.enable()
    result = reglab.run(overrides)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    groups: dict[str, float] = {}
    lightning_functions = []
    for (filename, line, name), (_, calls, tottime, _cumtime, _) in stats.items():
        if filename == "~":
            group = "C functions (torch ops, builtins)"
        elif "/lightning/" in filename or "/lightning_fabric/" in filename:
            group = "lightning (Python)"
            short = filename.split("/lightning/")[-1]
            lightning_functions.append((tottime, f"{short}:{line}({name})", calls))
        elif "/torchmetrics/" in filename:
            group = "torchmetrics (Python)"
        elif "/torch/" in filename:
            group = "torch (Python)"
        elif "/reglab/" in filename:
            group = "reglab (Python)"
        else:
            group = "other Python"
        groups[group] = groups.get(group, 0.0) + tottime
    steps = max(1, steps_hint)
    lightning_functions.sort(reverse=True)
    return {
        "fit_seconds_profiled": result.metrics["fit/seconds"],
        "steps": steps,
        "ms_per_step_by_group": {
            k: 1e3 * v / steps for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "top_lightning_functions": [
            {"function": f, "calls": c, "own_ms_per_step": 1e3 * t / steps}
            for t, f, c in lightning_functions[:10]
        ],
    }


def section_loop(args, work: Path) -> dict:
    import torch

    import reglab

    epochs = 2 if args.quick else 20
    common = [
        "logger=none",
        "callbacks=none",
        f"trainer.max_epochs={epochs}",
        "regularizer=l1",
        "regularizer.strength=1e-4",
        "optimizer=adam",
        "model=mlp",
        "dropout=0",
        "batchnorm=false",
        f"paths.output_dir={work / 'loop'}",
    ]
    cases = [("digits MLP 64-256-256-10", ["data=digits", "data.batch_size=64"])]
    notes = []
    if not args.quick:
        skip = _mnist1d_available()
        if skip is None:
            cases.append(("mnist1d MLP 40-256-256-10", ["data=mnist1d", "data.batch_size=64"]))
        else:
            notes.append(f"mnist1d skipped: {skip}")
    rows = []
    for label, extra in cases:
        overrides = common + extra
        log(f"loop: {label}: warm-up")
        warm = reglab.run(
            [o if not o.startswith("trainer.max_epochs=") else "trainer.max_epochs=1" for o in overrides]
        )
        _hand_loop(warm.config, warm.data, 1)
        reglab_s, hand_s, ratios, diffs = [], [], [], []
        steps = 0
        for r in range(args.repeats):
            result = reglab.run(overrides)
            seconds, val_loss, steps = _hand_loop(result.config, result.data, epochs)
            reglab_s.append(result.metrics["fit/seconds"])
            hand_s.append(seconds)
            ratios.append(reglab_s[-1] / hand_s[-1])
            diffs.append(abs(result.history["val/loss"][-1] - val_loss))
            log(f"loop: {label}: repeat {r + 1}: reglab {reglab_s[-1]:.3f} s, hand {seconds:.3f} s")
        rows.append(
            {
                "case": label,
                "epochs": epochs,
                "steps": steps,
                "reglab_s": median(reglab_s),
                "hand_s": median(hand_s),
                "ratio": median(ratios),
                "ratio_spread": spread(ratios),
                "reglab_ms_per_step": 1e3 * median(reglab_s) / steps,
                "hand_ms_per_step": 1e3 * median(hand_s) / steps,
                "overhead_ms_per_step": 1e3 * (median(reglab_s) - median(hand_s)) / steps,
                "val_loss_max_abs_diff": max(diffs),
            }
        )
    out = {"rows": rows, "notes": notes, "torch_threads": torch.get_num_threads()}
    if not args.quick:
        # Probes: the same hand loop on one thread; reglab with its default callbacks.
        first = reglab.run(common + cases[0][1])
        threads = torch.get_num_threads()
        two, one = [], []
        for _ in range(args.repeats):
            two.append(_hand_loop(first.config, first.data, epochs)[0])
            torch.set_num_threads(1)
            try:
                one.append(_hand_loop(first.config, first.data, epochs)[0])
            finally:
                torch.set_num_threads(threads)
        out["threads_probe"] = {
            "case": cases[0][0],
            "threads": threads,
            "hand_s": median(two),
            "hand_1_thread_s": median(one),
            "ratio_1_thread": median([a / b for a, b in zip(one, two, strict=True)]),
        }
        with_callbacks = [o for o in common if o != "callbacks=none"] + cases[0][1]
        plain, default = [], []
        for _ in range(args.repeats):
            plain.append(reglab.run(common + cases[0][1]).metrics["fit/seconds"])
            default.append(reglab.run(with_callbacks).metrics["fit/seconds"])
        out["callbacks_probe"] = {
            "case": cases[0][0],
            "callbacks_none_s": median(plain),
            "callbacks_default_s": median(default),
            "ratio": median([d / p for d, p in zip(default, plain, strict=True)]),
        }
        log("loop: decomposition (reglab's module without Lightning, a minimal LightningModule)")
        try:
            out["decomposition"] = _decomposition(first, epochs, args.repeats)
        except Exception as error:  # a probe of private pieces: report, do not fail the benchmark
            out["notes"].append(f"decomposition probe skipped: {type(error).__name__}: {error}")
        log("loop: cProfile of one digits fit")
        out["profile"] = _profile_fit(common + cases[0][1], rows[0]["steps"])
    return out


# ----------------------------------------------------------------------------- 2. penalty


def _conv_batches(batch: int, count: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(batch, 784, generator=generator), torch.randint(0, 10, (batch,), generator=generator))
        for _ in range(count)
    ]


def _data_batches(data_overrides: list[str], count: int):
    import torch
    from hydra.utils import instantiate

    from reglab.config import compose

    cfg = compose(data_overrides)
    module = instantiate(cfg.data)
    module.setup("fit")
    x, y = module.tensors["train"]
    b = int(cfg.data.batch_size)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    count = min(count, len(x) // b)
    batches = [
        (x.index_select(0, order[i * b : (i + 1) * b]), y.index_select(0, order[i * b : (i + 1) * b]))
        for i in range(count)
    ]
    return batches, module.n_features, module.n_outputs, list(module.input_shape)


def _steps(module, optimizer, batches, count: int) -> float:
    """Seconds per training step over ``count`` steps (cycling through ``batches``)."""
    lr = optimizer.param_groups[0]["lr"]
    regularizer, penalized = module.regularizer, module.penalized
    started = perf_counter()
    for i in range(count):
        batch = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = module.training_step(batch, i)
        loss.backward()
        module.on_before_optimizer_step(optimizer)
        optimizer.step()
        regularizer.after_step(penalized, lr)
    return (perf_counter() - started) / count


def section_penalty(args, work: Path) -> dict:
    import torch
    from hydra.utils import instantiate

    from reglab.config import compose
    from reglab.data import CLASSIFICATION
    from reglab.module import RegularizedModule

    reg_cfgs = {}
    for name in REGULARIZERS:
        extra = ["regularizer.mode=penalty"] if name == "group_lasso" else []
        reg_cfgs[name] = compose([f"regularizer={name}", *extra, f"paths.output_dir={work}"])
    models = [("MLP 64-256-256-10, digits, batch 64", ["model=mlp", "data=digits", "data.batch_size=64"])]
    notes = []
    if not args.quick:
        skip = _mnist1d_available()
        if skip is None and (ROOT / "conf" / "model" / "cnn1d.yaml").is_file():
            models.append(("cnn1d, mnist1d, batch 32", ["model=cnn1d", "data=mnist1d", "data.batch_size=32"]))
        else:
            notes.append(f"cnn1d on mnist1d skipped: {skip or 'conf/model/cnn1d.yaml not found'}")
    conv_batch = 16 if args.quick else 64
    if (ROOT / "conf" / "model" / "convnet.yaml").is_file():
        models.append((f"convnet 1x28x28 (random), batch {conv_batch}", ["model=convnet"]))
    else:
        notes.append("model=convnet not found: no 2-D conv net measured")
    budget = 0.02 if args.quick else 0.1  # seconds per measurement: short chunks, many rounds
    rounds = 2 if args.quick else 5 * args.repeats
    rows = []
    for label, overrides in models:
        if "model=convnet" in overrides:
            batches = _conv_batches(conv_batch, 8)
            n_features, n_outputs, shape = 784, 10, [1, 28, 28]
        else:
            batches, n_features, n_outputs, shape = _data_batches(
                [o for o in overrides if o.startswith("data")], 16
            )
        model_cfg = compose(overrides[:1] + ["dropout=0", "batchnorm=false"]).model
        built = {}
        for name, cfg in reg_cfgs.items():
            torch.manual_seed(0)
            model = instantiate(model_cfg, in_features=n_features, out_features=n_outputs, input_shape=shape)
            module = RegularizedModule(
                model, instantiate(cfg.regularizer), instantiate(cfg.optimizer), CLASSIFICATION, n_outputs
            )
            optimizer = module.configure_optimizers()
            _steps(module, optimizer, batches, 3)  # warm-up
            built[name] = (module, optimizer)
        per_step = _steps(*built["none"], batches, 5)
        count = max(5, min(1000, int(budget / per_step)))
        log(f"penalty: {label}: {count} steps per measurement ({1e3 * per_step:.2f} ms/step)")
        times: dict[str, list[float]] = {name: [] for name in REGULARIZERS}
        ratios: dict[str, list[float]] = {name: [] for name in REGULARIZERS}
        for r in range(rounds):
            order = list(REGULARIZERS[r % len(REGULARIZERS) :] + REGULARIZERS[: r % len(REGULARIZERS)])
            measured = {name: _steps(*built[name], batches, count) for name in order}
            for name in REGULARIZERS:
                times[name].append(measured[name])
                ratios[name].append(measured[name] / measured["none"])
        for name in REGULARIZERS:
            rows.append(
                {
                    "model": label,
                    "regularizer": name + (" (penalty mode)" if name == "group_lasso" else ""),
                    "ms_per_step": 1e3 * median(times[name]),
                    "ratio": median(ratios[name]),
                    "ratio_spread": spread(ratios[name]),
                    "extra_ms_per_step": 1e3 * (median(times[name]) - median(times["none"])),
                    "steps": count,
                    "rounds": rounds,
                }
            )
    return {"rows": rows, "notes": notes, "torch_threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- subprocesses


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("REGLAB_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    return env


_CHILDREN = itertools.count()


def run_child(command: list[str], work: Path, env: dict | None = None, timeout: float = 900) -> dict:
    """Run ``command`` in the repository root; wall time, peak RSS (this child's rusage
    from ``wait4``), exit status, output."""
    number = next(_CHILDREN)
    out_path, err_path = work / f"child{number}.out", work / f"child{number}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        spawned = time.time()
        started = perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env or child_env(), stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        wall = perf_counter() - started
        ended = time.time()
        process.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "returncode": process.returncode,
        "spawned": spawned,
        "ended": ended,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }
    if process.returncode != 0:
        tail = "\n".join(result["stderr"].splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    return result


# The phase wrapper: runs reglab.cli.main (the real `python train.py` path) with timers
# on the functions of each phase; time is attributed exclusively (a phase nested in
# another pauses it). Functions that no longer exist are listed as missing.
PHASE_SCRIPT = r"""
import functools, gc, json, os, sys, time
T_START = time.time()
gc.disable()  # as reglab.cli.main does, until the first job's reglab.entry.import_run_modules
from collections import defaultdict
from time import perf_counter

def _import_everything():
    import torch, lightning, omegaconf, hydra, mlflow, sklearn.datasets, torchmetrics  # noqa: F401
    import reglab.cli, reglab.pipeline, reglab.module, reglab.tracking, reglab.data  # noqa: F401
    for name in ("mlflow.store.tracking.sqlalchemy_store", "reglab.tracking.epoch_logger", "reglab.hydra_callbacks",
                 "reglab.progress", "reglab.models", "reglab.regularizers", "reglab.sweep",
                 "hydra._internal.config_loader_impl", "hydra.core.utils"):
        try:
            __import__(name)
        except Exception:
            pass

_import_everything()
T_IMPORTED = time.time()
import importlib

totals, counts, stack, missing = defaultdict(float), defaultdict(int), [], []

def enter(phase):
    now = perf_counter()
    if stack:
        totals[stack[-1][0]] += now - stack[-1][1]
    stack.append([phase, now])
    counts[phase] += 1

def leave():
    now = perf_counter()
    phase, start = stack.pop()
    totals[phase] += now - start
    if stack:
        stack[-1][1] = now

def wrap(module_name, path, phase):
    try:
        owner = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for p in parents:
            owner = getattr(owner, p)
        original = getattr(owner, attr)
    except Exception:
        missing.append(f"{module_name}.{path}")
        return
    @functools.wraps(original)
    def timed(*args, **kwargs):
        enter(phase)
        try:
            return original(*args, **kwargs)
        finally:
            leave()
    setattr(owner, attr, timed)

for module_name, path, phase in [
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl.load_configuration", "config"),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl.load_sweep_config", "config"),
    ("reglab.config", "validate", "config"),
    ("reglab.data", "ArrayDataModule.setup", "data"),
    ("reglab.tracking", "ensure_experiment", "store"),
    ("reglab.pipeline", "train", "build"),
    ("reglab.pipeline", "_start_tracking", "logging"),
    ("reglab.tracking", "TrackedRun.__init__", "logging"),
    ("reglab.tracking", "TrackedRun.start", "logging"),
    ("reglab.tracking", "TrackedRun.log_params", "logging"),
    ("reglab.tracking", "TrackedRun.log_text", "logging"),
    ("reglab.tracking", "TrackedRun.log_metric_rows", "logging"),
    ("reglab.tracking", "TrackedRun.set_tags", "logging"),
    ("reglab.tracking", "TrackedRun.finish", "logging"),
    ("reglab.tracking.epoch_logger", "EpochMetricsLogger.flush", "logging"),
    ("reglab.hydra_callbacks", "SweepTracking.on_multirun_start", "logging"),
    ("reglab.hydra_callbacks", "SweepTracking.on_multirun_end", "sweep summary"),
    ("reglab.report", "write_report", "sweep report"),
    ("lightning.pytorch.trainer.trainer", "Trainer.fit", "fit"),
    ("lightning.pytorch.trainer.trainer", "Trainer.test", "test"),
]:
    wrap(module_name, path, phase)

import reglab.cli

sys.argv = ["train.py", *sys.argv[1:]]
code = 0
enter("hydra")
try:
    reglab.cli.main()
except SystemExit as error:
    code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
finally:
    while stack:
        leave()
    with open(os.environ["REGLAB_BENCH_PHASES"], "w") as handle:
        json.dump({"t_start": T_START, "t_imported": T_IMPORTED, "t_main_done": time.time(),
                   "phases": totals, "counts": counts, "missing": missing}, handle)
sys.exit(code)
"""

PHASE_ORDER = (
    "import",
    "config",
    "data",
    "store",
    "build",
    "fit",
    "test",
    "logging",
    "hydra",
    "sweep summary",
    "sweep report",
    "exit",
)
PHASE_MEANING = {
    "import": "interpreter start + importing torch, lightning, hydra, mlflow, sklearn, reglab",
    "config": "Hydra composing the config (per job in a sweep) + reglab.config.validate",
    "data": "ArrayDataModule.setup (load, split, standardize)",
    "store": "reglab.tracking.ensure_experiment (MLflow client on the store, experiment lookup)",
    "build": "rest of pipeline.train: seed, model, RegularizedModule, callbacks, Trainer()",
    "fit": "Trainer.fit (minus MLflow writes inside it)",
    "test": "Trainer.test (on the best-epoch weights, which BestWeights put back)",
    "logging": "MLflow: client, create run, params, config.yaml artifact, metrics, finish",
    "hydra": "rest of hydra.main: argument parsing, run dir, logging setup, .hydra/*.yaml, job setup",
    "sweep summary": "SweepTracking.on_multirun_end without the report (jobs table, parent run)",
    "sweep report": "reglab.report.write_report (tables and plots of the sweep)",
    "exit": "from main() returning to the process having exited (interpreter shutdown)",
}


def run_phases(overrides: list[str], work: Path, env: dict | None = None) -> dict:
    """``train.py overrides`` through the phase wrapper; phase seconds summing to the wall."""
    number = next(_CHILDREN)
    script = work / f"phases{number}.py"
    script.write_text(PHASE_SCRIPT)
    target = work / f"phases{number}.json"
    environment = dict(env or child_env(), REGLAB_BENCH_PHASES=str(target))
    child = run_child([sys.executable, str(script), *overrides], work, env=environment)
    data = json.loads(target.read_text())
    phases = {"import": data["t_imported"] - child["spawned"]}
    phases.update(data["phases"])
    phases["exit"] = child["ended"] - data["t_main_done"]
    ordered = {k: phases[k] for k in PHASE_ORDER if k in phases}
    ordered.update({k: v for k, v in phases.items() if k not in ordered})
    return {
        "wall_s": child["wall_s"],
        "peak_rss_mb": child["peak_rss_mb"],
        "phases_s": ordered,
        "calls": data["counts"],
        "missing_hooks": data["missing"],
    }


def import_times(work: Path, output_dir: Path) -> dict:
    """Cumulative import seconds per top-level package in a real ``train.py`` run."""
    child = run_child(
        [
            sys.executable,
            "-X",
            "importtime",
            "train.py",
            "trainer.max_epochs=1",
            f"paths.output_dir={output_dir}",
        ],
        work,
    )
    own: dict[str, float] = {}  # self time of each package's own modules, whoever imported them
    pattern = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)")
    for line in child["stderr"].splitlines():
        match = pattern.match(line)
        if match:
            root = match.group(3).split(".")[0].lstrip("_") or match.group(3)
            own[root] = own.get(root, 0.0) + int(match.group(1)) / 1e6
    top = dict(sorted(own.items(), key=lambda kv: -kv[1])[:12])
    return {
        "total_s": sum(own.values()),
        "modules": sum(1 for line in child["stderr"].splitlines() if pattern.match(line)),
        "top_self_s": top,
        "wall_s_with_importtime": child["wall_s"],
    }


# ----------------------------------------------------------------------------- 3. startup


def section_startup(args, work: Path) -> dict:
    store = work / "startup_outputs"
    one_epoch = ["trainer.max_epochs=1", f"paths.output_dir={store}"]
    if args.quick:
        log("startup: creating the store (reglab.tracking.ensure_experiment)")
        create_store(store)
    else:
        log("startup: creating the store (one run)")
        run_child([sys.executable, "train.py", *one_epoch], work)
    out: dict = {"store": "existing", "command": "python train.py trainer.max_epochs=1"}
    walls, rss, phase_runs = [], [], []
    for r in range(1 if args.quick else args.repeats):
        if not args.quick:
            child = run_child([sys.executable, "train.py", *one_epoch], work)
            walls.append(child["wall_s"])
            rss.append(child["peak_rss_mb"])
        phase_runs.append(run_phases(one_epoch, work))
        log(
            f"startup: repeat {r + 1}: "
            + (f"train.py {walls[-1]:.2f} s, " if walls else "")
            + f"phase wrapper {phase_runs[-1]['wall_s']:.2f} s"
        )
    if args.quick:
        walls = [p["wall_s"] for p in phase_runs]
        rss = [p["peak_rss_mb"] for p in phase_runs]
    out["one_epoch_wall_s"] = median(walls)
    out["one_epoch_peak_rss_mb"] = max(rss)
    names = list(phase_runs[0]["phases_s"])
    out["phases_s"] = {k: median([p["phases_s"].get(k, 0.0) for p in phase_runs]) for k in names}
    out["phase_wrapper_wall_s"] = median([p["wall_s"] for p in phase_runs])
    out["phase_calls"] = phase_runs[0]["calls"]
    out["missing_hooks"] = phase_runs[0]["missing_hooks"]
    if not args.quick:
        defaults = [
            run_child([sys.executable, "train.py", f"paths.output_dir={store}"], work)
            for _ in range(args.repeats)
        ]
        out["default_run_wall_s"] = median([c["wall_s"] for c in defaults])
        out["default_run_peak_rss_mb"] = max(c["peak_rss_mb"] for c in defaults)
        epochs = re.findall(r"'fit/epochs': ([\d.]+)", defaults[-1]["stderr"] + defaults[-1]["stdout"])
        fit = re.findall(r"'fit/seconds': ([\d.]+)", defaults[-1]["stderr"] + defaults[-1]["stdout"])
        out["default_run_epochs"] = float(epochs[-1]) if epochs else None
        out["default_run_fit_s"] = float(fit[-1]) if fit else None
        log("startup: python -X importtime")
        out["imports"] = import_times(work, store)
    return out


# ----------------------------------------------------------------------------- 4. sweep


def create_store(output_dir: Path) -> None:
    """An existing store, as after a first run: database, schema, experiment ``reglab``."""
    from reglab import tracking

    tracking.disable_telemetry()
    uri = tracking.resolve_tracking_uri(None, output_dir)
    tracking.ensure_experiment(uri, "reglab", str(output_dir / "mlartifacts"))


def store_fit_seconds(database: Path) -> list[float]:
    """``fit/seconds`` of every active run in a SQLite MLflow store."""
    query = (
        "SELECT m.value FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
        "WHERE m.key = 'fit/seconds' AND r.lifecycle_stage = 'active'"
    )
    try:
        with sqlite3.connect(database) as connection:
            return [float(v) for (v,) in connection.execute(query)]
    except sqlite3.Error:  # schema changed: ask MLflow
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{database}")
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids) if ids else []
        return [r.data.metrics["fit/seconds"] for r in runs if "fit/seconds" in r.data.metrics]


def _sweep(
    grid: list[str], launcher: list[str], epochs: int, work: Path, name: str, phases: bool = False
) -> dict:
    output = work / name
    create_store(output)
    overrides = ["-m", *grid, f"trainer.max_epochs={epochs}", *launcher, f"paths.output_dir={output}"]
    if phases:
        measured = run_phases(overrides, work)
    else:
        measured = run_child([sys.executable, "train.py", *overrides], work)
    fits = store_fit_seconds(output / "mlflow.db")
    runs = len(fits)
    if runs == 0:
        raise RuntimeError(f"sweep {name}: no run with fit/seconds in {output / 'mlflow.db'}")
    wall = measured["wall_s"]
    result = {
        "runs": runs,
        "wall_s": wall,
        "wall_per_run_s": wall / runs,
        "fit_sum_s": sum(fits),
        "overhead_per_run_s": (wall - sum(fits)) / runs,
        "peak_rss_mb": measured["peak_rss_mb"],
    }
    if phases:
        result["phases_s"] = measured["phases_s"]
        result["missing_hooks"] = measured["missing_hooks"]
    return result


def section_sweep(args, work: Path) -> dict:
    grid = QUICK_SWEEP_GRID if args.quick else SWEEP_GRID
    epochs = 1 if args.quick else 2
    repeats = 1 if args.quick else args.sweep_repeats
    launchers = (("basic", []), ("joblib n_jobs=2", JOBLIB))
    if args.quick:  # a smoke test: both launchers at once (see --quick in the module docstring)
        log(f"sweep: basic and joblib at once, {' '.join(grid)}")
        with ThreadPoolExecutor(len(launchers)) as pool:
            futures = [
                pool.submit(_sweep, grid, launcher, epochs, work, f"sweep_{label.split()[0]}")
                for label, launcher in launchers
            ]
            done = {label: [future.result()] for (label, _), future in zip(launchers, futures, strict=True)}
    else:
        done = {}
        for label, launcher in launchers:
            done[label] = []
            for r in range(repeats):
                log(f"sweep: {label}, {len(grid)}-knob grid, repeat {r + 1}")
                done[label].append(_sweep(grid, launcher, epochs, work, f"sweep_{label.split()[0]}_{r}"))
    rows = []
    for label, _ in launchers:
        measured = done[label]
        row = {"launcher": label, "grid": " ".join(grid), "epochs": epochs}
        for key in measured[0]:
            row[key] = median([m[key] for m in measured])
        rows.append(row)
    out: dict = {"rows": rows}
    if not args.quick:
        log("sweep: basic, 2-run grid (fixed vs marginal cost)")
        small = _sweep(QUICK_SWEEP_GRID, [], epochs, work, "sweep_small")
        big = rows[0]
        marginal = ((big["wall_s"] - big["fit_sum_s"]) - (small["wall_s"] - small["fit_sum_s"])) / (
            big["runs"] - small["runs"]
        )
        fixed = (small["wall_s"] - small["fit_sum_s"]) - small["runs"] * marginal
        out["split"] = {
            "small_grid": small,
            "marginal_overhead_per_run_s": marginal,
            "fixed_overhead_s": fixed,
        }
        log("sweep: basic, 12-run grid through the phase wrapper")
        out["phases"] = _sweep(grid, [], epochs, work, "sweep_phases", phases=True)
    return out


# ----------------------------------------------------------------------------- report


def fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def span(bounds: list[float], digits: int = 2) -> str:
    return f"({bounds[0]:.{digits}f}-{bounds[1]:.{digits}f})" if bounds else ""


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n" + "\n".join(lines) + "\n"  # blank lines around: a markdown table ends at one


def targets(results: dict) -> list[dict]:
    found = []
    loop = results.get("loop", {}).get("rows", [])
    if loop:
        ratio = loop[0]["ratio"]
        found.append(
            {
                "target": f"fit <= {TARGET_LOOP}x hand loop, digits MLP (stretch {STRETCH_LOOP}x)",
                "measured": f"{ratio:.2f}x",
                "met": ratio <= TARGET_LOOP,
                "stretch_met": ratio <= STRETCH_LOOP,
            }
        )
    for row in results.get("penalty", {}).get("rows", []):
        if row["model"].startswith("MLP") and row["regularizer"] in ("l1", "l2", "elastic"):
            found.append(
                {
                    "target": f"penalty overhead <= 5 %, MLP, {row['regularizer']}",
                    "measured": f"{100 * (row['ratio'] - 1):+.1f} %",
                    "met": row["ratio"] <= TARGET_PENALTY,
                }
            )
    startup = results.get("startup", {})
    if startup.get("default_run_wall_s") is not None:
        wall = startup["default_run_wall_s"]
        found.append(
            {
                "target": f"default `python train.py` <= {TARGET_DEFAULT_RUN_S:.0f} s, existing store",
                "measured": f"{wall:.1f} s",
                "met": wall <= TARGET_DEFAULT_RUN_S,
            }
        )
    elif startup.get("one_epoch_wall_s") is not None:
        found.append(
            {
                "target": f"default `python train.py` <= {TARGET_DEFAULT_RUN_S:.0f} s (quick: 1 epoch)",
                "measured": f"{startup['one_epoch_wall_s']:.1f} s",
                "met": startup["one_epoch_wall_s"] <= TARGET_DEFAULT_RUN_S,
            }
        )
    sweep = results.get("sweep", {}).get("rows", [])
    if sweep:
        overhead = sweep[0]["overhead_per_run_s"]
        found.append(
            {
                "target": f"per-run sweep overhead <= {TARGET_SWEEP_OVERHEAD_S} s, basic launcher "
                f"({sweep[0]['runs']} runs)",
                "measured": f"{overhead:.2f} s",
                "met": overhead <= TARGET_SWEEP_OVERHEAD_S,
            }
        )
    return found


def render(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"# reglab benchmark ({'quick' if meta['quick'] else 'full'}, repeats {meta['repeats']})",
        *(
            ["--quick: tiny sizes, subprocesses run concurrently: a smoke test, not a measurement"]
            if meta["quick"]
            else []
        ),
        f"machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, torch threads "
        f"{meta['machine']['torch_threads']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["machine"]["versions"].items()),
        f"load average (1 min): {meta['load_before']:.2f} before, {meta['load_after']:.2f} after; "
        f"took {meta['seconds']:.0f} s; CPU cores busy with other processes during each section: "
        + ", ".join(f"{k} {fmt(results[k].get('other_load_cores'), 2)}" for k in SECTIONS if k in results),
    ]
    if "loop" in results:
        loop = results["loop"]
        parts += [
            "",
            "## 1. loop: reglab fit vs hand-written PyTorch loop (same work)",
            table(
                [
                    "case",
                    "epochs",
                    "steps",
                    "reglab fit s",
                    "hand loop s",
                    "ratio (IQR)",
                    "reglab ms/step",
                    "hand ms/step",
                    "overhead ms/step",
                    "abs diff val/loss",
                ],
                [
                    [
                        r["case"],
                        r["epochs"],
                        r["steps"],
                        r["reglab_s"],
                        r["hand_s"],
                        f"{r['ratio']:.2f}x {span(r['ratio_spread'])}",
                        r["reglab_ms_per_step"],
                        r["hand_ms_per_step"],
                        r["overhead_ms_per_step"],
                        f"{r['val_loss_max_abs_diff']:.1e}",
                    ]
                    for r in loop["rows"]
                ],
            ),
        ]
        parts += [f"note: {n}\n" for n in loop["notes"]]
        if "threads_probe" in loop:
            p = loop["threads_probe"]
            parts.append(
                f"probe: hand loop on 1 thread / on {p['threads']} threads = {p['ratio_1_thread']:.2f}x "
                f"({p['hand_1_thread_s']:.3f} s vs {p['hand_s']:.3f} s)"
            )
        if "decomposition" in loop:
            parts += [
                "",
                "decomposition (digits MLP, interleaved, medians):",
                table(
                    ["variant", "s", "ms/step", "ratio to hand loop (IQR)"],
                    [
                        [k, v["s"], v["ms_per_step"], f"{v['ratio_to_hand']:.2f}x {span(v['ratio_spread'])}"]
                        for k, v in loop["decomposition"].items()
                    ],
                ),
            ]
        if "callbacks_probe" in loop:
            p = loop["callbacks_probe"]
            parts.append(
                f"probe: reglab fit with callbacks=default / callbacks=none = {p['ratio']:.2f}x "
                f"({p['callbacks_default_s']:.3f} s vs {p['callbacks_none_s']:.3f} s)"
            )
    if "penalty" in results:
        pen = results["penalty"]
        parts += [
            "",
            "## 2. penalty: training step with each regularizer vs none",
            table(
                ["model", "regularizer", "ms/step", "ratio to none (IQR)", "extra ms/step", "steps x rounds"],
                [
                    [
                        r["model"],
                        r["regularizer"],
                        r["ms_per_step"],
                        f"{r['ratio']:.3f} {span(r['ratio_spread'], 3)}",
                        r["extra_ms_per_step"],
                        f"{r['steps']} x {r['rounds']}",
                    ]
                    for r in pen["rows"]
                ],
            ),
        ]
        parts += [f"note: {n}\n" for n in pen["notes"]]
    if "startup" in results:
        st = results["startup"]
        rows = [
            [
                "`python train.py trainer.max_epochs=1` (existing store)",
                st["one_epoch_wall_s"],
                st["one_epoch_peak_rss_mb"],
            ]
        ]
        if st.get("default_run_wall_s") is not None:
            rows.append(
                [
                    f"`python train.py` (default; {fmt(st['default_run_epochs'], 0)} epochs, fit "
                    f"{fmt(st['default_run_fit_s'], 2)} s)",
                    st["default_run_wall_s"],
                    st["default_run_peak_rss_mb"],
                ]
            )
        parts += [
            "",
            "## 3. startup: one run as a subprocess",
            table(["command", "wall s", "peak RSS MB"], rows),
            "",
            f"phases of `train.py trainer.max_epochs=1` (wrapper wall {st['phase_wrapper_wall_s']:.2f} s):",
            table(
                ["phase", "s", "what"], [[k, v, PHASE_MEANING.get(k, "")] for k, v in st["phases_s"].items()]
            ),
        ]
        if st.get("missing_hooks"):
            parts.append(
                f"note: hooks not found (their time is in the enclosing phase): {st['missing_hooks']}"
            )
        if "imports" in st:
            imp = st["imports"]
            parts += [
                "",
                f"`python -X importtime` of that run: {imp['modules']} modules, {imp['total_s']:.2f} s "
                "of imports; top packages by the time of their own modules:",
                table(["package", "s"], [[k, v] for k, v in imp["top_self_s"].items()]),
            ]
    if "sweep" in results:
        sw = results["sweep"]
        parts += [
            "",
            "## 4. sweep: per-run cost of a multirun",
            table(
                [
                    "launcher",
                    "runs",
                    "wall s",
                    "wall/run s",
                    "sum fit/seconds",
                    "overhead/run s",
                    "peak RSS MB",
                ],
                [
                    [
                        r["launcher"],
                        r["runs"],
                        r["wall_s"],
                        r["wall_per_run_s"],
                        r["fit_sum_s"],
                        r["overhead_per_run_s"],
                        r["peak_rss_mb"],
                    ]
                    for r in sw["rows"]
                ],
            ),
        ]
        if "split" in sw:
            s = sw["split"]
            parts.append(
                f"basic launcher, 2-run vs 12-run grid: fixed overhead {s['fixed_overhead_s']:.2f} s per "
                f"sweep + marginal {s['marginal_overhead_per_run_s']:.2f} s per run"
            )
        if "phases" in sw:
            ph = sw["phases"]
            parts += [
                f"phases of the basic 12-run sweep (wrapper wall {ph['wall_s']:.2f} s, per run):",
                table(
                    ["phase", "s total", "s per run"],
                    [[k, v, v / ph["runs"]] for k, v in ph["phases_s"].items()],
                ),
            ]
    if "profile" in results.get("loop", {}):
        prof = results["loop"]["profile"]
        parts += [
            "",
            f"## profiler: cProfile of one reglab fit (digits MLP, {prof['steps']} steps; "
            f"cProfile inflates Python time)",
            table(
                ["own time by package", "ms/step"], [[k, v] for k, v in prof["ms_per_step_by_group"].items()]
            ),
            "",
            table(
                ["top Lightning functions (own time)", "calls", "ms/step"],
                [[f["function"], f["calls"], f["own_ms_per_step"]] for f in prof["top_lightning_functions"]],
            ),
        ]
    parts += [
        "",
        "## targets",
        table(
            ["target", "measured", "status"],
            [
                [
                    t["target"],
                    t["measured"],
                    ("met" if t["met"] else "NOT met") + (" (stretch met)" if t.get("stretch_met") else ""),
                ]
                for t in results["targets"]
            ],
        ),
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).strip() + "\n"


def wait_for_quiet(limit_s: float, threshold: float = 1.0) -> None:
    deadline = time.monotonic() + limit_s
    while load() > threshold and time.monotonic() < deadline:
        log(f"waiting for the 1-minute load average to drop below {threshold}")
        time.sleep(30)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CI smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (median)")
    parser.add_argument("--sweep-repeats", type=int, default=1, help="repeats of each full sweep (median)")
    parser.add_argument("--json", type=Path, help="write all results to this JSON file")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    parser.add_argument(
        "--wait-for-quiet",
        type=float,
        default=0,
        metavar="S",
        help="first wait up to S seconds for the 1-minute load average to drop below 1.0",
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    if args.quick:
        args.repeats = 1
    args.repeats = max(1, args.repeats)
    args.sweep_repeats = max(1, args.sweep_repeats)
    if args.wait_for_quiet:
        wait_for_quiet(args.wait_for_quiet)

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("reglab").setLevel(logging.WARNING)
    started, load_before = perf_counter(), load()
    results: dict = {
        "meta": {
            "quick": args.quick,
            "repeats": args.repeats,
            "sweep_repeats": args.sweep_repeats,
            "sections": sections,
            "load_before": load_before,
            "command": " ".join(["python", "scripts/bench.py", *(argv or sys.argv[1:])]),
        }
    }
    results["meta"]["machine"] = machine_info()
    runners = {
        "loop": section_loop,
        "penalty": section_penalty,
        "startup": section_startup,
        "sweep": section_sweep,
    }
    # --quick: the subprocess sections run at the same time (a smoke test, not a measurement)
    steps = [[name] for name in sections if not (args.quick and name in SUBPROCESS_SECTIONS)]
    steps += [[name for name in sections if name in SUBPROCESS_SECTIONS]] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="reglab-bench-") as tmp:
        for names in (step for step in steps if step):
            before = cpu_snapshot()
            with ThreadPoolExecutor(len(names)) as pool:
                futures = {name: pool.submit(runners[name], args, Path(tmp)) for name in names}
                for name, future in futures.items():
                    results[name] = future.result()
            after = cpu_snapshot()
            for name in names:
                results[name]["seconds"] = after[2] - before[2]
                results[name]["other_load_cores"] = foreign_load(before, after)
                log(
                    f"{name}: done in {results[name]['seconds']:.1f} s, other processes' load "
                    f"{fmt(results[name]['other_load_cores'], 2)} cores"
                )
    results["meta"]["load_after"] = load()
    results["meta"]["seconds"] = perf_counter() - started
    results["targets"] = targets(results)
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
