"""Per-class intervals that stay honest on small classes: Clopper-Pearson (exact binomial) of k correct out of n.

A percentile bootstrap cannot move a class that is always right (3/3 resamples to 3/3 every time and prints
[1, 1]); the exact binomial interval comes from the binomial law itself (3/3: [0.292, 1]). The bootstrap stays
for the aggregate metrics, which are no proportion of counts.
"""
import numpy as np
from scipy.stats import beta

NAME = "Clopper-Pearson (exact binomial)"
NOTE = (f"per-class intervals: 95% {NAME} of the correct images out of the class's images, by image (a "
        f"bootstrap prints [1, 1] for a class that is always right)")


def clopper_pearson(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per entry of the counts ``k`` out of ``n``; NaN where n is 0 (no images, no proportion)."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    a = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(a, np.maximum(k, 1), n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - a, k + 1, np.maximum(n - k, 1)), 1.0)
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)
