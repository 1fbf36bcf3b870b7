"""The article's questions as studies.

- :mod:`reglab.studies.bias_variance`: the decompositions (squared loss with the data / seed
  split of the variance, Domingos' 0-1 loss, cross-entropy) of replicated predictions, pure numpy;
- :mod:`reglab.studies.bias_variance_study`: the study that trains the replicates (stacked) and
  decomposes their predictions per regularizer and strength;
- :mod:`reglab.studies.bias_variance_report`: its table, page and figure;
- :mod:`reglab.studies.article`, ``article_study``, ``article_report``: the article's claims,
  one experiment per claim, decided over seeds into ``claims.md``.

A study is a preset (``conf/experiment/<name>.yaml``, its settings under ``study.<name>``) and a
script (``scripts/<name>.py``) that trains its fits and keeps what a sweep does not collect
(every fit's test predictions, trained weights). ``python train.py experiment=<name>`` runs the
script with the other overrides, and a ``-m`` sweep of a study is refused
(:mod:`reglab.studies.presets`).
"""
