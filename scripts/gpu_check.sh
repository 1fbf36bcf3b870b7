#!/usr/bin/env bash
# GPU check: on a machine with a CUDA GPU, train mnist1d (cnn1d) and a conv net on CIFAR-10
# with trainer=gpu, in bf16-mixed and in fp32, and print throughput (samples/s) and the
# bf16 / fp32 ratio, then stacked sweeps (below). CIFAR-10 comes from $CIFAR_ROOT when it holds the data set, else
# random images of the same shape written in CIFAR-10's on-disk format. A few minutes.
#   bash scripts/gpu_check.sh
#   TRAINER=cpu EPOCHS=1 bash scripts/gpu_check.sh     # the same plumbing on a CPU (fp32 only)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export TRAINER="${TRAINER:-gpu}" EPOCHS="${EPOCHS:-3}"

"$PYTHON" - <<'PY'
import os
import tempfile

import torch

import reglab
from reglab.data.images import write_example_set

trainer, epochs = os.environ["TRAINER"], int(os.environ["EPOCHS"])
if trainer == "gpu":
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU (torch.cuda.is_available() is False)")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"bf16 supported: {torch.cuda.is_bf16_supported()}")
precisions = ("bf16-mixed", "32-true") if trainer == "gpu" else ("32-true",)

root = os.environ.get("CIFAR_ROOT", "")
if not (root and os.path.isdir(os.path.join(root, "cifar-10-batches-py"))):
    root = tempfile.mkdtemp(prefix="cifar-shaped-")
    write_example_set("cifar10", root, n_train=10_000, n_test=1_000)
    print(f"CIFAR-10 not found: random images of its shape in {root}")
cases = {
    "mnist1d cnn1d": ["data=mnist1d", "model=cnn1d", "data.batch_size=256"],
    "cifar10 convnet": ["data=cifar10", f"data.root={root}", "model=convnet", "data.batch_size=256"],
}
common = [f"trainer={trainer}", "logger=none", "callbacks=none", f"trainer.max_epochs={epochs}"]
print(f"{'case':<18}{'precision':<12}{'samples/s':>12}{'test/acc':>10}")
for name, overrides in cases.items():
    speed = {}
    for precision in precisions:
        result = reglab.run([*common, *overrides, f"++trainer.precision={precision}"])
        n_train = len(result.data.tensors["train"][0])
        speed[precision] = epochs * n_train / result.metrics["fit/seconds"]
        print(f"{name:<18}{precision:<12}{speed[precision]:>12.0f}{result.metrics['test/acc']:>10.3f}")
    if len(speed) == 2:
        print(f"{name:<18}{'bf16/fp32':<12}{speed['bf16-mixed'] / speed['32-true']:>11.2f}x")
PY

# Stacked sweeps: K = 256 small MLPs (digits, mnist1d) trained as one stack against the same
# runs one after another (estimated from a sample of SAMPLE runs): wall time per run and the
# speed-up. Target on one GPU: >= 30x. README, "Stacked sweeps".
export MEMBERS="${MEMBERS:-256}" SAMPLE="${SAMPLE:-4}"
"$PYTHON" - <<'PY'
import os
import time

import reglab
from reglab.stacked.api import run_stacked

trainer, epochs = os.environ["TRAINER"], int(os.environ["EPOCHS"])
members, sample = int(os.environ["MEMBERS"]), int(os.environ["SAMPLE"])
common = [f"trainer={trainer}", "logger=none", "callbacks=none", f"trainer.max_epochs={epochs}", "model=mlp"]
common.append("++trainer.precision=32-true")  # the stacked engine runs 32 or 64 (gpu's bf16-mixed would not stack)
for name in ("digits", "mnist1d"):  # imports, device start-up and data generation, before timing
    reglab.run([*common, f"data={name}", "trainer.max_epochs=1"], verbose=False)
print(f"\nstacked: {members} members vs {members} sequential runs (estimated from {sample})")
print(f"{'case':<16}{'stacked s':>11}{'sequential s':>14}{'speed-up':>10}{'mean test/acc':>15}")
for name in ("digits", "mnist1d"):
    jobs = [[*common, f"data={name}", f"seed={s}", f"regularizer.strength={10 ** (-5 + s % 4)}"] for s in range(members)]
    started = time.perf_counter()
    results = [r.metrics for r in run_stacked(jobs, max_members=members, verbose=False)]
    stacked = time.perf_counter() - started
    started = time.perf_counter()
    for job in jobs[:sample]:
        reglab.run(job, verbose=False)
    sequential = (time.perf_counter() - started) / sample * members
    accuracy = sum(r["test/acc"] for r in results) / len(results)
    print(f"{name:<16}{stacked:>11.1f}{sequential:>14.1f}{sequential / stacked:>9.1f}x{accuracy:>15.3f}")
PY

# A 1,000-run stacked sweep through the CLI, its MLflow records included: synthetic linear models
# (scripts/bench/bookkeeping.py's grid, SWEEP_EPOCHS epochs), one stack of 1,000 members in fp32,
# its wall time split into start-up, planning, training and bookkeeping (target: <= 20 ms of
# bookkeeping per member; in one stack every member's test and record comes after training,
# nothing overlaps), beside the basic launcher's time estimated from a sample of 8 runs.
#   TRAINER=cpu SWEEP_EPOCHS=1: the same plumbing on a CPU (measured: 170 s on 2 loaded cores)
export SWEEP_EPOCHS="${SWEEP_EPOCHS:-30}"
"$PYTHON" - <<'PY'
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "scripts")
from bench.bookkeeping import BASIC_SAMPLE, SWEEPS, basic_sample, split, timed_sweep

device = [f"trainer={os.environ['TRAINER']}", "++trainer.precision=32-true"]  # a stack runs 32 or 64
epochs = f"trainer.max_epochs={os.environ['SWEEP_EPOCHS']}"
work = Path(tempfile.mkdtemp(prefix="gpu-check-sweep-"))


def with_epochs(grid: list[str]) -> list[str]:
    return [o for o in grid if not o.startswith("trainer.max_epochs=")] + [epochs, *device]


grid = [*with_epochs(SWEEPS[1000]), "hydra.launcher.max_members=1000"]
measured, spans = timed_sweep(grid, "stacked", work)
parts = split(measured, spans, 1000)
basic = basic_sample(with_epochs(BASIC_SAMPLE), work)
estimate = basic["fixed_s"] + 1000 * basic["per_run_s"]
print(f"\nstacked sweep of 1000 synthetic linear runs ({os.environ['SWEEP_EPOCHS']} epochs), one stack: "
      f"{measured['wall_s']:.1f} s")
for name in ("startup", "planning", "training", "bookkeeping", "end", "other"):
    print(f"  {name:<12}{parts[name + '_s']:>9.1f} s")
print(f"  bookkeeping {parts['bookkeeping_ms_per_member']:.1f} ms per member (target <= 20), planning "
      f"{parts['planning_ms_per_member']:.1f} ms per member")
print(f"basic launcher, estimated from {basic['sample_runs']} runs: {estimate:.0f} s "
      f"({basic['fixed_s']:.1f} s fixed + {basic['per_run_s']:.2f} s per run): "
      f"{estimate / measured['wall_s']:.1f}x the stacked sweep")
PY
