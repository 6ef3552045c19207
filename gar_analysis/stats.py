"""Small statistical helpers shared by the gap analysis and the models."""
from __future__ import annotations

import numpy as np


def dersimonian_laird_tau2(est, s2, target: float) -> float:
    """Return the DerSimonian-Laird between-unit variance around a fixed target.

    Parameters
    ----------
    est : array-like
        Unit estimates (rates or ratios).
    s2 : array-like
        Their sampling variances; units with a non-positive or missing variance are ignored.
    target : float
        The reference value the units are compared with.

    Returns
    -------
    float
        The moment estimate of τ², floored at 0 (0 with fewer than two usable units).

    Examples
    --------
    >>> dersimonian_laird_tau2([0.1, 0.1, 0.1], [0.01, 0.01, 0.01], 0.1)
    0.0
    """
    est = np.asarray(est, float)
    s2 = np.asarray(s2, float)
    ok = np.isfinite(est) & np.isfinite(s2) & (s2 > 0)
    est, s2 = est[ok], s2[ok]
    if len(est) < 2:
        return 0.0
    w = 1.0 / s2
    q = float((w * (est - target) ** 2).sum())
    denom = w.sum() - (w ** 2).sum() / w.sum()
    return max(0.0, (q - (len(est) - 1)) / denom) if denom > 0 else 0.0
