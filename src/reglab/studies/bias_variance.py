"""Bias-variance decompositions of replicated predictions (pure numpy).

Predictions ``f[b, s, i]`` come from ``B`` training sets ``b`` (bootstrap resamples or fresh
draws: the *data*) times ``S`` seeds ``s`` (the initialization) on ``n`` fixed held-out points
``i``. Every function returns means over the held-out points.

**Squared loss** (regression). With ``m_b = mean_s f[b, s]``, ``m = mean_b m_b``, the within-replicate
variance ``W = mean_b var_s(f[b, s])`` and the between-replicate variance ``V_b = var_b(m_b)`` (both
with ``ddof = 1``), the unbiased estimates of the law of total variance (Neal et al. 2018)::

    Var f = E_D[Var_O(f | D)] + Var_D(E_O[f | D])
    variance_init = W                         (E W = E_D Var_O)
    variance_data = V_b - W / S               (E V_b = Var_D E_O + E_D Var_O / S)
    variance      = variance_data + variance_init = V_b + (1 - 1/S) W
    bias          = (m - t)^2 - V_b / B       (= bias^2: E (m - t)^2 = bias^2 + Var m, E V_b / B = Var m)
    error         = bias + variance + noise

for the noise-free target ``t = E[y | x]`` and ``noise = sigma^2``. ``bias + variance`` equals
``mean_{b,s} (t - f[b, s])^2`` exactly. With ``S = 1`` the variance is not split (both parts
NaN). Given the observed ``y`` instead of ``t`` (``observed=True``), ``(m - y)^2 - V_b / B``
estimates ``bias^2 + noise``, and ``noise`` (an estimate: :func:`nearest_neighbour_noise`) is
subtracted from it.

**0-1 loss** (classification; Domingos 2000, noise taken as 0: the label is the optimal
prediction). Per point, over the ``M = B S`` fits: the main prediction ``y_m`` (the most frequent
class, the smallest on ties), ``bias(x) = 1[y_m != y]``, ``V(x) = P(f != y_m)``. Then::

    P(f != y) = V(x)                           if bias(x) = 0
    P(f != y) = 1 - P(f = y) = 1 - c(x) V(x)   if bias(x) = 1,  c(x) = P(f = y | f != y_m)
    error     = bias + variance_unbiased - E_x[bias(x) c(x) V(x)]

``variance_unbiased = E_x[(1 - bias) V]``, ``variance_biased = E_x[bias V]`` (Domingos' terms),
``variance = variance_unbiased - E_x[bias c V]`` the net variance (``c = 1`` with two classes:
``variance_unbiased - variance_biased``).

**Cross-entropy** (Heskes 1998, noise taken as 0). With the normalized geometric mean
``p_bar(c) = exp(E log p(c)) / Z`` of the fits' class probabilities::

    E[-log p(y)] = -log p_bar(y) + (-log Z),     -log Z = E[KL(p_bar || p)] >= 0

(bias, variance). KL is a Bregman divergence, so the variance splits as the law of total variance
does: with ``p_bar_b`` the geometric mean of replicate ``b``'s seeds (normalizer ``Z_b``),
``variance_init = E_b[-log Z_b] = E_b E_s KL(p_bar_b || p)`` and ``variance_data = -log Z + E_b log Z_b
= E_b KL(p_bar || p_bar_b)``. These are plug-in estimates: with ``S`` seeds the initialization part
is understated (roughly by ``(S - 1) / S``, as a variance with ``ddof = 0``).

Monte Carlo standard errors (:func:`standard_errors`): the standard deviation of a component over
bootstrap resamples of the training sets (each with its seeds), the held-out points fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import logsumexp


def squared_loss(
    pred: np.ndarray, target: np.ndarray, noise: float = 0.0, observed: bool = False
) -> dict[str, float]:
    """``error``, ``bias`` (= bias^2), ``variance``, ``variance_data``, ``variance_init``, ``noise``
    of predictions ``pred`` (shape ``(B, S, n)``, ``B >= 2``) against ``target`` (``(n,)``): the
    noise-free target, or the observed one with ``observed`` (module docstring)."""
    pred = np.asarray(pred, dtype=np.float64)
    replicates, seeds = pred.shape[:2]
    means = pred.mean(axis=1)
    between = means.var(axis=0, ddof=1)
    within = pred.var(axis=1, ddof=1).mean(axis=0) if seeds > 1 else np.zeros(pred.shape[2])
    bias = (means.mean(axis=0) - np.asarray(target, dtype=np.float64)) ** 2 - between / replicates
    bias = bias.mean() - (noise if observed else 0.0)
    variance = float((between + (1 - 1 / seeds) * within).mean())
    split = seeds > 1
    return {
        "error": float(bias + variance + noise),
        "bias": float(bias),
        "variance": variance,
        "variance_data": float((between - within / seeds).mean()) if split else np.nan,
        "variance_init": float(within.mean()) if split else np.nan,
        "noise": float(noise),
    }


def zero_one_loss(labels_pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Domingos' decomposition of the 0-1 loss of predicted class indices ``labels_pred``
    (``(B, S, n)``) against ``labels`` (``(n,)``): ``error``, ``bias``, ``variance`` (net),
    ``variance_unbiased``, ``variance_biased`` (module docstring)."""
    flat = np.asarray(labels_pred).reshape(-1, np.shape(labels_pred)[-1])
    labels = np.asarray(labels)
    classes = int(max(flat.max(), labels.max())) + 1
    counts = np.stack([(flat == c).mean(axis=0) for c in range(classes)])  # (C, n): P(f = c)
    main = counts.argmax(axis=0)
    points = np.arange(len(labels))
    bias = (main != labels).astype(np.float64)
    spread = 1.0 - counts[main, points]  # V(x) = P(f != y_m)
    hit = counts[labels, points]  # P(f = y) = c(x) V(x) where biased
    unbiased = ((1 - bias) * spread).mean()
    return {
        "error": float(1.0 - hit.mean()),
        "bias": float(bias.mean()),
        "variance": float(unbiased - (bias * hit).mean()),
        "variance_unbiased": float(unbiased),
        "variance_biased": float((bias * spread).mean()),
    }


def cross_entropy(log_probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Heskes' decomposition of the cross-entropy of log class probabilities ``log_probs``
    (``(B, S, n, C)``) against ``labels`` (``(n,)``): ``error``, ``bias``, ``variance``,
    ``variance_data``, ``variance_init`` (module docstring; NaN parts with one seed)."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    points = np.arange(len(labels))
    seeds = log_probs.shape[1]
    centre = log_probs.mean(axis=(0, 1))  # (n, C): E log p
    log_z = logsumexp(centre, axis=-1)
    bias = -(centre[points, labels] - log_z)
    replicate_log_z = logsumexp(log_probs.mean(axis=1), axis=-1)  # (B, n)
    split = seeds > 1
    return {
        "error": float(-log_probs[..., points, labels].mean()),
        "bias": float(bias.mean()),
        "variance": float(-log_z.mean()),
        "variance_data": float((replicate_log_z.mean(axis=0) - log_z).mean()) if split else np.nan,
        "variance_init": float(-replicate_log_z.mean()) if split else np.nan,
    }


def nearest_neighbour_noise(x: np.ndarray, y: np.ndarray) -> float:
    """An estimate of the noise variance ``sigma^2`` of ``y = f(x) + noise`` from the points
    themselves: ``sum_i (y_i - y_j(i))^2 / (2 n)`` with ``j(i)`` the nearest other point of
    ``x_i`` (Euclidean), a difference-based estimate (Rice 1984) whose expectation is
    ``sigma^2 + E (f(x_i) - f(x_j(i)))^2 / 2``: too large by half the change of ``f`` between
    neighbours."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    squared = (x**2).sum(axis=1)
    distance = squared[:, None] + squared[None, :] - 2 * x @ x.T
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(axis=1)
    return float(((y - y[nearest]) ** 2).sum(axis=1).mean() / 2)


def standard_errors(
    decompose: Callable[..., dict[str, float]],
    arrays: Sequence[np.ndarray],
    draws: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Monte Carlo standard error of each value of ``decompose(*arrays)``: the standard deviation
    (``ddof = 1``) over ``draws`` bootstrap resamples of axis 0 (the training sets; every array
    is resampled with the same rows, each replicate keeping its seeds)."""
    rng = np.random.default_rng(seed)
    replicates = len(arrays[0])
    samples = [
        decompose(*(np.asarray(a)[rows] for a in arrays))
        for rows in rng.integers(0, replicates, size=(draws, replicates))
    ]
    return {key: float(np.std([s[key] for s in samples], ddof=1)) for key in samples[0]}
