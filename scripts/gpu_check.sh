#!/usr/bin/env bash
# GPU check: on a machine with a CUDA GPU, train mnist1d (cnn1d) and a conv net on CIFAR-10
# shaped data with trainer=gpu, in bf16-mixed and fp32, and print throughput (samples/s)
# and the bf16 / fp32 ratio. Uses CIFAR-10 from $CIFAR_ROOT when it holds the data set,
# else synthetic tensors of the same shape. Finishes in a few minutes.
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

"$PYTHON" - <<'PY'
import os
import time

import torch

if not torch.cuda.is_available():
    raise SystemExit("gpu_check: no CUDA GPU (torch.cuda.is_available() is False)")
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, bf16 supported: "
      f"{torch.cuda.is_bf16_supported()}")

import reglab  # noqa: E402

root = os.environ.get("CIFAR_ROOT", "")
cifar = os.path.isdir(os.path.join(root, "cifar-10-batches-py")) if root else False
cases = {
    "mnist1d cnn1d": ["data=mnist1d", "model=cnn1d", "data.batch_size=256"],
    "cifar10 convnet": (["data=cifar10", f"data.root={root}", "model=convnet", "data.batch_size=256"] if cifar
                        else ["data=synthetic", "data.task=classification", "data.n_train=20000",
                              "data.n_features=3072", "+data.input_shape=[3,32,32]", "model=convnet",
                              "data.batch_size=256"]),
}
common = ["trainer=gpu", "logger=none", "callbacks=none", "trainer.max_epochs=3"]
print(f"{'case':<18}{'precision':<12}{'samples/s':>12}{'test metric':>14}")
for name, overrides in cases.items():
    speed = {}
    for precision in ("bf16-mixed", "32-true"):
        started = time.perf_counter()
        result = reglab.run([*common, *overrides, f"trainer.precision={precision}"])
        n_train = len(result.data.tensors["train"][0])
        speed[precision] = 3 * n_train / result.metrics["fit/seconds"]
        metric = result.metrics.get("test/acc", float("nan"))
        print(f"{name:<18}{precision:<12}{speed[precision]:>12.0f}{metric:>14.3f}")
    print(f"{name:<18}{'bf16/fp32':<12}{speed['bf16-mixed'] / speed['32-true']:>12.2f}x")
PY
