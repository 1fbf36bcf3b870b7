"""The targets of the benchmark, each marked met / NOT met from the results."""

from __future__ import annotations

from bench.common import (
    STRETCH_LOOP,
    TARGET_DEFAULT_RUN_S,
    TARGET_LOOP,
    TARGET_PENALTY,
    TARGET_STACKED_SPEEDUP,
    TARGET_SWEEP_OVERHEAD_S,
)


def _loop_target(results: dict) -> list[dict]:
    loop = results.get("loop", {}).get("rows", [])
    if not loop:
        return []
    ratio = loop[0]["ratio"]
    return [
        {
            "target": f"fit <= {TARGET_LOOP}x hand loop, digits MLP (stretch {STRETCH_LOOP}x)",
            "measured": f"{ratio:.2f}x",
            "met": ratio <= TARGET_LOOP,
            "stretch_met": ratio <= STRETCH_LOOP,
        }
    ]


def _penalty_targets(results: dict) -> list[dict]:
    return [
        {
            "target": f"penalty overhead <= 5 %, MLP, {row['regularizer']}",
            "measured": f"{100 * (row['ratio'] - 1):+.1f} %",
            "met": row["ratio"] <= TARGET_PENALTY,
        }
        for row in results.get("penalty", {}).get("rows", [])
        if row["model"].startswith("MLP") and row["regularizer"] in ("l1", "l2", "elastic")
    ]


def _startup_target(results: dict) -> list[dict]:
    startup = results.get("startup", {})
    if startup.get("default_run_wall_s") is not None:
        wall = startup["default_run_wall_s"]
        return [
            {
                "target": f"default `python train.py` <= {TARGET_DEFAULT_RUN_S:.0f} s, existing store",
                "measured": f"{wall:.1f} s",
                "met": wall <= TARGET_DEFAULT_RUN_S,
            }
        ]
    if startup.get("one_epoch_wall_s") is not None:
        return [
            {
                "target": f"default `python train.py` <= {TARGET_DEFAULT_RUN_S:.0f} s (quick: 1 epoch)",
                "measured": f"{startup['one_epoch_wall_s']:.1f} s",
                "met": startup["one_epoch_wall_s"] <= TARGET_DEFAULT_RUN_S,
            }
        ]
    return []


def _sweep_target(results: dict) -> list[dict]:
    sweep = results.get("sweep", {}).get("rows", [])
    if not sweep:
        return []
    overhead = sweep[0]["overhead_per_run_s"]
    return [
        {
            "target": f"per-run sweep overhead <= {TARGET_SWEEP_OVERHEAD_S} s, basic launcher "
            f"({sweep[0]['runs']} runs)",
            "measured": f"{overhead:.2f} s",
            "met": overhead <= TARGET_SWEEP_OVERHEAD_S,
        }
    ]


def _stacked_targets(results: dict) -> list[dict]:
    stacked = results.get("stacked")
    if not stacked:
        return []
    ab, sc = stacked["ablation"], stacked["scaling"]
    largest = sc["rows"][-1]
    found = [
        {
            "target": f"stacked ablation >= {TARGET_STACKED_SPEEDUP:g}x faster than basic "
            f"({ab['stacked_finished']} runs)",
            "measured": f"{ab['speedup']:.2f}x",
            "met": ab["speedup"] >= TARGET_STACKED_SPEEDUP,
        },
        {
            "target": f"per-member step at K={largest['members']} below the hand loop's",
            "measured": f"{largest['per_member_step_ms']:.3f} vs {sc['hand_loop_step_ms']:.3f} ms",
            "met": largest["per_member_step_ms"] < sc["hand_loop_step_ms"],
        },
    ]
    book = stacked.get("bookkeeping")
    for row in book["rows"] if book else []:
        found.append(
            {
                "target": f"stacked bookkeeping <= {book['target_ms']:g} ms per member ({row['runs']} runs)",
                "measured": f"{row['bookkeeping_ms_per_member']:.1f} ms",
                "met": row["bookkeeping_ms_per_member"] <= book["target_ms"],
            }
        )
    return found


def targets(results: dict) -> list[dict]:
    """Each target with what was measured and whether it is met."""
    return (
        _loop_target(results)
        + _penalty_targets(results)
        + _startup_target(results)
        + _sweep_target(results)
        + _stacked_targets(results)
    )
