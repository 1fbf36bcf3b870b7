"""Section 1, ``loop``: reglab's fit vs a hand-written PyTorch loop doing the same work;
probes (one thread, default callbacks), the decomposition and a cProfile of one fit."""

from __future__ import annotations

from pathlib import Path

from bench.common import log, mnist1d_available
from bench.loops import hand_loop, minimal_lightning, module_loop
from bench.stats import median, ratios, spread


def loop_overrides(epochs: int, work: Path) -> list[str]:
    """reglab.run overrides of the loop section (no logger, no callbacks, L1 1e-4, Adam)."""
    return [
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


def loop_cases(quick: bool) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(label, data overrides) of each case, and notes on the cases skipped."""
    cases = [("digits MLP 64-256-256-10", ["data=digits", "data.batch_size=64"])]
    notes = []
    if not quick:
        skip = mnist1d_available()
        if skip is None:
            cases.append(("mnist1d MLP 40-256-256-10", ["data=mnist1d", "data.batch_size=64"]))
        else:
            notes.append(f"mnist1d skipped: {skip}")
    return cases, notes


def measure_case(label: str, overrides: list[str], epochs: int, repeats: int) -> dict:
    """reglab fit and hand loop, interleaved ``repeats`` times after a warm-up of each."""
    import reglab

    log(f"loop: {label}: warm-up")
    warm = reglab.run(
        [o if not o.startswith("trainer.max_epochs=") else "trainer.max_epochs=1" for o in overrides]
    )
    hand_loop(warm.config, warm.data, 1)
    reglab_s, hand_s, diffs = [], [], []
    steps = 0
    for r in range(repeats):
        result = reglab.run(overrides)
        seconds, val_loss, steps = hand_loop(result.config, result.data, epochs)
        reglab_s.append(result.metrics["fit/seconds"])
        hand_s.append(seconds)
        diffs.append(abs(result.history["val/loss"][-1] - val_loss))
        log(f"loop: {label}: repeat {r + 1}: reglab {reglab_s[-1]:.3f} s, hand {seconds:.3f} s")
    pairs = ratios(reglab_s, hand_s)
    return {
        "case": label,
        "epochs": epochs,
        "steps": steps,
        "reglab_s": median(reglab_s),
        "hand_s": median(hand_s),
        "ratio": median(pairs),
        "ratio_spread": spread(pairs),
        "reglab_ms_per_step": 1e3 * median(reglab_s) / steps,
        "hand_ms_per_step": 1e3 * median(hand_s) / steps,
        "overhead_ms_per_step": 1e3 * (median(reglab_s) - median(hand_s)) / steps,
        "val_loss_max_abs_diff": max(diffs),
    }


def threads_probe(first, label: str, epochs: int, repeats: int) -> dict:
    """The hand loop on torch's threads vs on one thread, interleaved."""
    import torch

    threads = torch.get_num_threads()
    two, one = [], []
    for _ in range(repeats):
        two.append(hand_loop(first.config, first.data, epochs)[0])
        torch.set_num_threads(1)
        try:
            one.append(hand_loop(first.config, first.data, epochs)[0])
        finally:
            torch.set_num_threads(threads)
    return {
        "case": label,
        "threads": threads,
        "hand_s": median(two),
        "hand_1_thread_s": median(one),
        "ratio_1_thread": median(ratios(one, two)),
    }


def callbacks_probe(overrides: list[str], label: str, repeats: int) -> dict:
    """reglab fit with ``callbacks=none`` vs its default callbacks, interleaved."""
    import reglab

    with_callbacks = [o for o in overrides if o != "callbacks=none"]
    plain, default = [], []
    for _ in range(repeats):
        plain.append(reglab.run(overrides).metrics["fit/seconds"])
        default.append(reglab.run(with_callbacks).metrics["fit/seconds"])
    return {
        "case": label,
        "callbacks_none_s": median(plain),
        "callbacks_default_s": median(default),
        "ratio": median(ratios(default, plain)),
    }


def decomposition(first, epochs: int, repeats: int) -> dict:
    """hand loop < + reglab's module (no Lightning) < minimal LightningModule < reglab fit,
    interleaved, digits MLP: where the loop ratio comes from."""
    import reglab

    cfg, data = first.config, first.data
    overrides = first.overrides
    variants = {
        "hand loop": lambda: hand_loop(cfg, data, epochs)[0],
        "hand loop through RegularizedModule (no Lightning)": lambda: module_loop(cfg, data, epochs),
        "minimal LightningModule, same Trainer config": lambda: minimal_lightning(cfg, data, epochs),
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
            "ratio_to_hand": median(ratios(t, hand)),
            "ratio_spread": spread(ratios(t, hand)),
        }
        for name, t in times.items()
    }


def _package_of(filename: str) -> str:
    if filename == "~":
        return "C functions (torch ops, builtins)"
    if "/lightning/" in filename or "/lightning_fabric/" in filename:
        return "lightning (Python)"
    for package in ("torchmetrics", "torch", "reglab"):
        if f"/{package}/" in filename:
            return f"{package} (Python)"
    return "other Python"


def profile_fit(overrides: list[str], steps_hint: int) -> dict:
    """cProfile one reglab fit; own time grouped by package, per optimizer step."""
    import cProfile
    import pstats

    import reglab

    profiler = cProfile.Profile()
    profiler.enable()
    result = reglab.run(overrides)
    profiler.disable()
    groups: dict[str, float] = {}
    lightning_functions = []
    for (filename, line, name), (_, calls, tottime, _cumtime, _) in pstats.Stats(profiler).stats.items():
        group = _package_of(filename)
        if group == "lightning (Python)":
            short = filename.split("/lightning/")[-1]
            lightning_functions.append((tottime, f"{short}:{line}({name})", calls))
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


def probes(out: dict, overrides: list[str], label: str, epochs: int, repeats: int) -> None:
    """The full mode's extras on the first case: threads, callbacks, decomposition, profile."""
    import reglab

    first = reglab.run(overrides)
    out["threads_probe"] = threads_probe(first, label, epochs, repeats)
    out["callbacks_probe"] = callbacks_probe(overrides, label, repeats)
    log("loop: decomposition (reglab's module without Lightning, a minimal LightningModule)")
    try:
        out["decomposition"] = decomposition(first, epochs, repeats)
    except Exception as error:  # a probe of private pieces: report, do not fail the benchmark
        out["notes"].append(f"decomposition probe skipped: {type(error).__name__}: {error}")
    log("loop: cProfile of one digits fit")
    out["profile"] = profile_fit(overrides, out["rows"][0]["steps"])


def section_loop(args, work: Path) -> dict:
    import torch

    epochs = 2 if args.quick else 20
    common = loop_overrides(epochs, work)
    cases, notes = loop_cases(args.quick)
    rows = [measure_case(label, common + extra, epochs, args.repeats) for label, extra in cases]
    out = {"rows": rows, "notes": notes, "torch_threads": torch.get_num_threads()}
    if not args.quick:
        probes(out, common + cases[0][1], cases[0][0], epochs, args.repeats)
    return out
