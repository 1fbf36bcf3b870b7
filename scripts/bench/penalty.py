"""Section 2, ``penalty``: the training step with each regularizer vs none, in a tight loop
through ``RegularizedModule.training_step``."""

from __future__ import annotations

from pathlib import Path
from time import perf_counter

from bench.common import REGULARIZERS, ROOT, log, mnist1d_available
from bench.stats import median, spread


def conv_batches(batch: int, count: int):
    """Random 784-feature batches (1x28x28 images) with 10 classes."""
    import torch

    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(batch, 784, generator=generator), torch.randint(0, 10, (batch,), generator=generator))
        for _ in range(count)
    ]


def data_batches(data_overrides: list[str], count: int):
    """Up to ``count`` shuffled training batches of a data config, and its sizes."""
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


def steps(module, optimizer, batches, count: int) -> float:
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


def penalty_models(quick: bool) -> tuple[list[tuple[str, list[str]]], list[str], int]:
    """(label, overrides) of each model measured, notes on those skipped, the convnet batch."""
    models = [("MLP 64-256-256-10, digits, batch 64", ["model=mlp", "data=digits", "data.batch_size=64"])]
    notes = []
    if not quick:
        skip = mnist1d_available()
        if skip is None and (ROOT / "conf" / "model" / "cnn1d.yaml").is_file():
            models.append(("cnn1d, mnist1d, batch 32", ["model=cnn1d", "data=mnist1d", "data.batch_size=32"]))
        else:
            notes.append(f"cnn1d on mnist1d skipped: {skip or 'conf/model/cnn1d.yaml not found'}")
    conv_batch = 16 if quick else 64
    if (ROOT / "conf" / "model" / "convnet.yaml").is_file():
        models.append((f"convnet 1x28x28 (random), batch {conv_batch}", ["model=convnet"]))
    else:
        notes.append("model=convnet not found: no 2-D conv net measured")
    return models, notes, conv_batch


def build_modules(overrides: list[str], reg_cfgs: dict, sizes: tuple) -> dict:
    """A warmed-up (module, optimizer) per regularizer, the same model init for each."""
    import torch
    from hydra.utils import instantiate

    from reglab.config import compose
    from reglab.data import CLASSIFICATION
    from reglab.module import RegularizedModule

    batches, n_features, n_outputs, shape = sizes
    model_cfg = compose(overrides[:1] + ["dropout=0", "batchnorm=false"]).model
    built = {}
    for name, cfg in reg_cfgs.items():
        torch.manual_seed(0)
        model = instantiate(model_cfg, in_features=n_features, out_features=n_outputs, input_shape=shape)
        module = RegularizedModule(
            model, instantiate(cfg.regularizer), instantiate(cfg.optimizer), CLASSIFICATION, n_outputs
        )
        optimizer = module.configure_optimizers()
        steps(module, optimizer, batches, 3)  # warm-up
        built[name] = (module, optimizer)
    return built


def measure_model(label: str, built: dict, batches, budget: float, rounds: int) -> list[dict]:
    """Rows of one model: each regularizer's step time and its ratio to none, per round in a
    rotated order."""
    per_step = steps(*built["none"], batches, 5)
    count = max(5, min(1000, int(budget / per_step)))
    log(f"penalty: {label}: {count} steps per measurement ({1e3 * per_step:.2f} ms/step)")
    times: dict[str, list[float]] = {name: [] for name in REGULARIZERS}
    pairs: dict[str, list[float]] = {name: [] for name in REGULARIZERS}
    for r in range(rounds):
        order = list(REGULARIZERS[r % len(REGULARIZERS) :] + REGULARIZERS[: r % len(REGULARIZERS)])
        measured = {name: steps(*built[name], batches, count) for name in order}
        for name in REGULARIZERS:
            times[name].append(measured[name])
            pairs[name].append(measured[name] / measured["none"])
    return [
        {
            "model": label,
            "regularizer": name + (" (penalty mode)" if name == "group_lasso" else ""),
            "ms_per_step": 1e3 * median(times[name]),
            "ratio": median(pairs[name]),
            "ratio_spread": spread(pairs[name]),
            "extra_ms_per_step": 1e3 * (median(times[name]) - median(times["none"])),
            "steps": count,
            "rounds": rounds,
        }
        for name in REGULARIZERS
    ]


def section_penalty(args, work: Path) -> dict:
    import torch

    from reglab.config import compose

    reg_cfgs = {}
    for name in REGULARIZERS:
        extra = ["regularizer.mode=penalty"] if name == "group_lasso" else []
        reg_cfgs[name] = compose([f"regularizer={name}", *extra, f"paths.output_dir={work}"])
    models, notes, conv_batch = penalty_models(args.quick)
    budget = 0.02 if args.quick else 0.1  # seconds per measurement: short chunks, many rounds
    rounds = 2 if args.quick else 5 * args.repeats
    rows = []
    for label, overrides in models:
        if "model=convnet" in overrides:
            sizes = (conv_batches(conv_batch, 8), 784, 10, [1, 28, 28])
        else:
            sizes = data_batches([o for o in overrides if o.startswith("data")], 16)
        built = build_modules(overrides, reg_cfgs, sizes)
        rows += measure_model(label, built, sizes[0], budget, rounds)
    return {"rows": rows, "notes": notes, "torch_threads": torch.get_num_threads()}
