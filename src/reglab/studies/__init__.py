"""The article's questions as studies.

- :mod:`reglab.studies.bias_variance`: the decompositions (squared loss with the data / seed
  split of the variance, Domingos' 0-1 loss, cross-entropy) of replicated predictions, pure numpy;
- :mod:`reglab.studies.bias_variance_study`: the study that trains the replicates (stacked) and
  decomposes their predictions per regularizer and strength;
- :mod:`reglab.studies.bias_variance_report`: its table, page and figure.
"""
