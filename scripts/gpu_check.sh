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
