"""The command line: ``python scripts/bench.py [--quick] [--repeats N] [--sections ...]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter

import bench
from bench.common import SECTIONS, SUBPROCESS_SECTIONS, load, log
from bench.loop import section_loop
from bench.machine import cpu_snapshot, foreign_load, machine_info, wait_for_quiet
from bench.penalty import section_penalty
from bench.render import fmt, render
from bench.stacked import section_stacked
from bench.startup import section_startup
from bench.sweep import section_sweep
from bench.targets import targets

RUNNERS = {
    "loop": section_loop,
    "penalty": section_penalty,
    "startup": section_startup,
    "sweep": section_sweep,
    "stacked": section_stacked,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench.py",
        description=bench.__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    if args.quick:
        args.repeats = 1
    args.repeats = max(1, args.repeats)
    args.sweep_repeats = max(1, args.sweep_repeats)
    return args


def quiet_environment() -> None:
    """No tracking URI from the shell, no telemetry, warnings and reglab's info lines off."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("reglab").setLevel(logging.WARNING)


def steps_of(args) -> list[list[str]]:
    """The sections in order, one per step; ``--quick`` runs the subprocess sections at the
    same time (a smoke test, not a measurement)."""
    steps = [[name] for name in args.sections if not (args.quick and name in SUBPROCESS_SECTIONS)]
    steps += [[name for name in args.sections if name in SUBPROCESS_SECTIONS]] if args.quick else []
    return [step for step in steps if step]


def run_sections(args, results: dict, work: Path, runners: dict = RUNNERS) -> None:
    """Run each step's sections (in threads when several), with the time they took and the
    load other processes put on the machine meanwhile."""
    for names in steps_of(args):
        before = cpu_snapshot()
        with ThreadPoolExecutor(len(names)) as pool:
            futures = {name: pool.submit(runners[name], args, work) for name in names}
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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.wait_for_quiet:
        wait_for_quiet(args.wait_for_quiet)
    quiet_environment()
    started, load_before = perf_counter(), load()
    results: dict = {
        "meta": {
            "quick": args.quick,
            "repeats": args.repeats,
            "sweep_repeats": args.sweep_repeats,
            "sections": args.sections,
            "load_before": load_before,
            "command": " ".join(["python", "scripts/bench.py", *(argv or sys.argv[1:])]),
        }
    }
    results["meta"]["machine"] = machine_info()
    with tempfile.TemporaryDirectory(prefix="reglab-bench-") as tmp:
        run_sections(args, results, Path(tmp))
    results["meta"]["load_after"] = load()
    results["meta"]["seconds"] = perf_counter() - started
    results["targets"] = targets(results)
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results
