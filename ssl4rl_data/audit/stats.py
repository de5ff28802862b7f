"""Small statistics for the audit, numpy and scipy (which scikit-image already brings) only."""

import math

import numpy as np
from scipy import stats as scipy_stats


def chi_square_uniform(counts: dict, expected_keys=None) -> dict:
    """Chi-square test of answer counts against a uniform share. `expected_keys`: every answer the task
    can give (those never given count 0); default: the answers seen."""
    keys = sorted(set(counts) | set(expected_keys or ()))
    observed = np.array([counts.get(k, 0) for k in keys], float)
    total = observed.sum()
    if len(keys) < 2 or total == 0:
        return {"answers": len(keys), "chi2": 0.0, "dof": 0, "p": 1.0}
    expected = total / len(keys)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = len(keys) - 1
    return {"answers": len(keys), "chi2": round(chi2, 3), "dof": dof, "p": float(scipy_stats.chi2.sf(chi2, dof))}


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    >>> [round(v, 3) for v in wilson(50, 100)]
    [0.404, 0.596]
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def above_chance_p(successes: int, n: int, chance: float) -> float:
    """One-sided binomial p-value of `successes` of `n` or more at rate `chance`."""
    if n == 0:
        return 1.0
    return float(scipy_stats.binom.sf(successes - 1, n, min(max(chance, 1e-12), 1 - 1e-12)))


def one_sided_z(alpha: float) -> float:
    return float(scipy_stats.norm.isf(alpha))
