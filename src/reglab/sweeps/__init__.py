"""Sweeps (``python train.py -m ...``): the Hydra callbacks around all jobs
(:mod:`.callbacks`), the sweep's identity file (:mod:`.manifest`), one job
(:mod:`.job`), outcome files (:mod:`.outcomes`) and ``+resume=true`` (:mod:`.resume`)."""
