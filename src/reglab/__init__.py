"""reglab: regularization experiments with PyTorch Lightning, Hydra and MLflow.

``reglab.run(overrides)`` trains one configuration from Python and returns a
:class:`reglab.pipeline.Result`; ``python train.py`` is the same job from the shell.
Heavy modules are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["run", "Result"]


def __getattr__(name: str):
    if name in __all__:
        from reglab import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'reglab' has no attribute {name!r}")
