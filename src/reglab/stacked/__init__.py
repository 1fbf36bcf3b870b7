"""Stacked sweeps: the compatible jobs of a sweep trained together as one batched model.

Jobs whose configs differ only in *stackable* knobs (seed, regularizer strength / l1_ratio /
mode among none, l1, l2 and elastic, dropout rate, optimizer lr / weight_decay / momentum,
early-stopping patience / min_delta; :mod:`reglab.stacked.plan`) share an architecture. Their
parameters are stacked along a leading *member* axis and one forward / backward / optimizer
step trains all of them (:class:`~reglab.stacked.module.StackedModule`, under Lightning's
Trainer). Each member keeps what its sequential run has: its split, initialization and batch
order (drawn from its own data module), its regularizer (the same
:mod:`reglab.regularizers` code, applied to its slice), its batch-norm statistics, its early
stopping and best-epoch weights, its test and its own MLflow run
(:mod:`reglab.stacked.records`). Members that stop leave the stack.

``python train.py -m experiment=ablation hydra/launcher=stacked`` (docs/sweeps.md, "Stacked sweeps").
"""
