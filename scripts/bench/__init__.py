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

Sections (one module each; ``python scripts/bench.py`` launches :mod:`bench.cli`):

1. ``loop`` (:mod:`bench.loop`, :mod:`bench.loops`): ``reglab.run([... "logger=none",
   "callbacks=none", "trainer.max_epochs=20"])`` (a real ``lightning.Trainer`` fitting
   ``RegularizedModule``; its ``fit/seconds``) vs a minimal hand-written PyTorch loop doing
   the same work: the same model (same init), the same data tensors, the same batch order
   per epoch, the same L1 penalty (1e-4, applied as reglab does: ``strength * sign(w)``
   added to the gradients after backward, the value once per epoch), Adam, and the same
   per-epoch validation pass on the val split.
   On digits (MLP 64-256-256-10, batch 64) and MNIST-1D (MLP 40-256-256-10, batch 64).
   The final ``val/loss`` of both is compared as a check that they did the same work.
2. ``penalty`` (:mod:`bench.penalty`): the training step (forward + loss + backward + the
   penalty's gradient in ``on_before_optimizer_step`` + Adam step + the regularizer's
   ``after_step``) in a tight loop through ``RegularizedModule.training_step`` for
   ``none``, ``l1``, ``l2``, ``elastic`` and ``group_lasso`` (penalty mode), as a ratio to
   ``none``: the MLP on digits, ``cnn1d`` on MNIST-1D and ``convnet`` on random 1x28x28
   tensors.
3. ``startup`` (:mod:`bench.startup`): ``python train.py trainer.max_epochs=1`` with an
   existing store, as a subprocess: wall time and peak RSS (``wait4`` rusage); the same
   run with ``REGLAB_TIMINGS`` set, whose spans (:mod:`reglab.timing`, recorded by
   reglab's own code path) split it into phases (:mod:`bench.phases`: import, config,
   data, store, build, fit, test, logging, hydra, exit); the default ``python train.py``
   (100 epochs, early stopping); ``python -X importtime``'s cumulative import time per
   top-level package; the cost of a span.
4. ``sweep`` (:mod:`bench.sweep`): ``python train.py -m regularizer=none,l1,l2,elastic
   dropout=0,0.3,0.5 trainer.max_epochs=2`` (12 runs; ``--quick``: 2 runs) with the basic
   launcher and with ``hydra/launcher=joblib hydra.launcher.n_jobs=2``: wall per run and
   per-run overhead = (wall - sum of the runs' ``fit/seconds`` read from the MLflow store)
   / runs; full mode also runs the 2-run grid to split it into a fixed and a marginal
   part, and the 12-run grid with ``REGLAB_TIMINGS`` (where the overhead goes).

Shared pieces: :mod:`bench.common` (constants, log), :mod:`bench.stats` (median, spread),
:mod:`bench.machine` (machine info, load), :mod:`bench.children` (running a child process,
the store), :mod:`bench.render` and :mod:`bench.targets` (the markdown).

Targets (printed as met / NOT met): fit <= 1.25x the hand loop on the digits MLP
(stretch 1.1x); penalty overhead <= 5 % for l1 / l2 / elastic on the MLP; default
``python train.py`` <= 8 s wall with an existing store; per-run sweep overhead <= 0.5 s
with the basic launcher.
"""
