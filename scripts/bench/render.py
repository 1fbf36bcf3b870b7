"""The results as markdown: one table per section, the profiler's findings, the targets."""

from __future__ import annotations

import re

from bench.common import SECTIONS
from bench.phases import PHASE_MEANING


def fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def iqr(bounds: list[float], digits: int = 2) -> str:
    """``(low-high)`` of a spread, empty without one."""
    return f"({bounds[0]:.{digits}f}-{bounds[1]:.{digits}f})" if bounds else ""


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n" + "\n".join(lines) + "\n"  # blank lines around: a markdown table ends at one


def header(results: dict) -> list[str]:
    meta = results["meta"]
    machine = meta["machine"]
    return [
        f"# reglab benchmark ({'quick' if meta['quick'] else 'full'}, repeats {meta['repeats']})",
        *(
            ["--quick: tiny sizes, subprocesses run concurrently: a smoke test, not a measurement"]
            if meta["quick"]
            else []
        ),
        f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads {machine['torch_threads']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"load average (1 min): {meta['load_before']:.2f} before, {meta['load_after']:.2f} after; "
        f"took {meta['seconds']:.0f} s; CPU cores busy with other processes during each section: "
        + ", ".join(f"{k} {fmt(results[k].get('other_load_cores'), 2)}" for k in SECTIONS if k in results),
    ]


LOOP_HEADERS = [
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
]


def _loop_row(r: dict) -> list:
    return [
        r["case"],
        r["epochs"],
        r["steps"],
        r["reglab_s"],
        r["hand_s"],
        f"{r['ratio']:.2f}x {iqr(r['ratio_spread'])}",
        r["reglab_ms_per_step"],
        r["hand_ms_per_step"],
        r["overhead_ms_per_step"],
        f"{r['val_loss_max_abs_diff']:.1e}",
    ]


def render_loop(loop: dict) -> list[str]:
    parts = [
        "",
        "## 1. loop: reglab fit vs hand-written PyTorch loop (same work)",
        table(LOOP_HEADERS, [_loop_row(r) for r in loop["rows"]]),
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
                    [k, v["s"], v["ms_per_step"], f"{v['ratio_to_hand']:.2f}x {iqr(v['ratio_spread'])}"]
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
    return parts


def render_penalty(pen: dict) -> list[str]:
    rows = [
        [
            r["model"],
            r["regularizer"],
            r["ms_per_step"],
            f"{r['ratio']:.3f} {iqr(r['ratio_spread'], 3)}",
            r["extra_ms_per_step"],
            f"{r['steps']} x {r['rounds']}",
        ]
        for r in pen["rows"]
    ]
    headers = ["model", "regularizer", "ms/step", "ratio to none (IQR)", "extra ms/step", "steps x rounds"]
    parts = ["", "## 2. penalty: training step with each regularizer vs none", table(headers, rows)]
    return parts + [f"note: {n}\n" for n in pen["notes"]]


def _startup_commands(st: dict) -> list[list]:
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
    return rows


def render_startup(st: dict) -> list[str]:
    parts = [
        "",
        "## 3. startup: one run as a subprocess",
        table(["command", "wall s", "peak RSS MB"], _startup_commands(st)),
        "",
        f"phases of `train.py trainer.max_epochs=1` (REGLAB_TIMINGS spans; timed run wall "
        f"{st['timed_run_wall_s']:.2f} s):",
        table(["phase", "s", "what"], [[k, v, PHASE_MEANING.get(k, "")] for k, v in st["phases_s"].items()]),
    ]
    if st.get("missing_phases"):
        parts.append(
            f"note: no span recorded for (their time is in the enclosing phase): {st['missing_phases']}"
        )
    cost = st.get("span_cost_us") or {}
    if cost.get("off_us") is not None:
        parts.append(
            f"span cost: {cost['off_us']:.3f} us with timing off (every run without REGLAB_TIMINGS), "
            f"{cost['on_us']:.3f} us on"
        )
    if "imports" in st:
        imp = st["imports"]
        parts += [
            "",
            f"`python -X importtime` of that run: {imp['modules']} modules, {imp['total_s']:.2f} s "
            "of imports; top packages by the time of their own modules:",
            table(["package", "s"], [[k, v] for k, v in imp["top_self_s"].items()]),
        ]
    return parts


SWEEP_HEADERS = [
    "launcher",
    "runs",
    "wall s",
    "wall/run s",
    "sum fit/seconds",
    "overhead/run s",
    "peak RSS MB",
]
SWEEP_KEYS = [
    "launcher",
    "runs",
    "wall_s",
    "wall_per_run_s",
    "fit_sum_s",
    "overhead_per_run_s",
    "peak_rss_mb",
]


def render_sweep(sw: dict) -> list[str]:
    parts = [
        "",
        "## 4. sweep: per-run cost of a multirun",
        table(SWEEP_HEADERS, [[r[k] for k in SWEEP_KEYS] for r in sw["rows"]]),
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
            f"phases of the basic 12-run sweep (REGLAB_TIMINGS spans; timed run wall {ph['wall_s']:.2f} s, "
            "per run):",
            table(
                ["phase", "s total", "s per run"], [[k, v, v / ph["runs"]] for k, v in ph["phases_s"].items()]
            ),
        ]
        if ph.get("missing_phases"):
            parts.append(f"note: no span recorded for: {ph['missing_phases']}")
    return parts


def render_stacked(st: dict) -> list[str]:
    ab, sc = st["ablation"], st["scaling"]
    low, high = ab["acc_difference_ci"]
    return [
        "",
        "## 5. stacked: hydra/launcher=stacked against the basic launcher",
        table(
            ["grid", "basic s", "stacked s", "speed-up", "FINISHED basic / stacked"],
            [
                [
                    ab["grid"],
                    ab["basic_wall_s"],
                    ab["stacked_wall_s"],
                    ab["speedup"],
                    f"{ab['basic_finished']} / {ab['stacked_finished']}",
                ]
            ],
        ),
        f"test/acc stacked - basic, paired over {ab['paired_jobs']} jobs: {fmt(ab['acc_difference'], 4)} "
        f"(95 % CI [{fmt(low, 4)}, {fmt(high, 4)}])",
        "",
        *_render_floor(st.get("floor"), ab["basic_wall_s"]),
        f"per-member cost of a stack ({sc['epochs']} epochs, {sc['steps']} steps; hand-written single-model "
        f"loop {fmt(sc['hand_loop_step_ms'])} ms per step):",
        table(
            ["members K", "stack fit s", "ms per member step", "x hand loop"],
            [
                [
                    r["members"],
                    r["fit_s"],
                    r["per_member_step_ms"],
                    r["per_member_step_ms"] / sc["hand_loop_step_ms"],
                ]
                for r in sc["rows"]
            ],
        ),
        *_render_bookkeeping(st.get("bookkeeping")),
    ]


def _render_bookkeeping(book: dict | None) -> list[str]:
    if not book:
        return []
    basic = book["basic_sample"]
    return [
        "",
        "where a stacked sweep's wall time goes (seconds; bookkeeping: each member's folder, data and "
        "model, test and the records not written while a later stack trained):",
        table(
            [
                "runs",
                "wall s",
                "start-up",
                "planning",
                "training",
                "bookkeeping",
                "end",
                "other",
                "bookkeeping ms / member",
                "planning ms / member",
                "basic launcher s (estimated)",
            ],
            [
                [
                    r["runs"],
                    r["wall_s"],
                    r["startup_s"],
                    r["planning_s"],
                    r["training_s"],
                    r["bookkeeping_s"],
                    r["end_s"],
                    r["other_s"],
                    r["bookkeeping_ms_per_member"],
                    r["planning_ms_per_member"],
                    r["basic_estimated_s"],
                ]
                for r in book["rows"]
            ],
        ),
        f"basic launcher: a sample of {basic['sample_runs']} runs took {fmt(basic['sample_wall_s'], 1)} s: "
        f"{fmt(basic['fixed_s'], 1)} s fixed + {fmt(basic['per_run_s'])} s per run; grids: "
        + "; ".join(f"{r['runs']}: `{r['grid']}`" for r in book["rows"]),
    ]


def _render_floor(floor: dict | None, basic_s: float) -> list[str]:
    if not floor:
        return []
    seconds = floor["seconds"]
    return [
        f"4x would need the whole stacked sweep in {fmt(basic_s / 4, 1)} s (the basic launcher's / 4); "
        f"its training steps alone take {fmt(seconds['dropout'], 1)} s in a hand-written stacked loop "
        f"({floor['members']} digits MLPs, {floor['steps']} steps; no Lightning, validation, metrics, "
        "penalty, MLflow or Hydra):",
        table(
            ["what", "seconds"],
            [
                [f"matrix products alone ({fmt(floor['products_gflops'], 0)} GFLOP/s)", seconds["products"]],
                ["hand-written stacked loop, no dropout", seconds["no_dropout"]],
                [
                    "hand-written stacked loop, half the members dropout 0.3 (seeded masks)",
                    seconds["dropout"],
                ],
                *(
                    [["the same with torch's global generator's masks", seconds["global_generator_dropout"]]]
                    if "global_generator_dropout" in seconds
                    else []
                ),
            ],
        ),
        "",
    ]


def render_profile(prof: dict) -> list[str]:
    return [
        "",
        f"## profiler: cProfile of one reglab fit (digits MLP, {prof['steps']} steps; "
        f"cProfile inflates Python time)",
        table(["own time by package", "ms/step"], [[k, v] for k, v in prof["ms_per_step_by_group"].items()]),
        "",
        table(
            ["top Lightning functions (own time)", "calls", "ms/step"],
            [[f["function"], f["calls"], f["own_ms_per_step"]] for f in prof["top_lightning_functions"]],
        ),
    ]


def render_targets(found: list[dict]) -> list[str]:
    rows = [
        [
            t["target"],
            t["measured"],
            ("met" if t["met"] else "NOT met") + (" (stretch met)" if t.get("stretch_met") else ""),
        ]
        for t in found
    ]
    return ["", "## targets", table(["target", "measured", "status"], rows)]


def render(results: dict) -> str:
    """All of it, as printed by the benchmark."""
    parts = header(results)
    renderers = {
        "loop": render_loop,
        "penalty": render_penalty,
        "startup": render_startup,
        "sweep": render_sweep,
        "stacked": render_stacked,
    }
    for name, section in renderers.items():
        if name in results:
            parts += section(results[name])
    if "profile" in results.get("loop", {}):
        parts += render_profile(results["loop"]["profile"])
    parts += render_targets(results["targets"])
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).strip() + "\n"
