"""reglab's Hydra launchers, here because Hydra discovers launcher plugins only in the
``hydra_plugins`` namespace package; the logic is :mod:`reglab.sweeps.checked` (basic,
stacked), :mod:`reglab.stacked.launch` and :mod:`reglab.sweeps.launchers` (submitit)."""
