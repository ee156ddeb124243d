"""Temperature scaling: logits divided by one temperature T (one per class for multi-label), fitted on val by
NLL; T = 1 is kept where no other temperature lowers val NLL, so scaling never raises it. Dividing by T keeps
each class's ranking and the top class, so only the calibration numbers change."""
import numpy as np
from scipy.optimize import minimize_scalar

from .calibration import counted
from .tasks import binary_cross_entropy, cross_entropy

LOG_T = (np.log(0.05), np.log(20.0))  # the temperatures searched: 0.05 to 20


def best_temperature(nll) -> float:
    """The T in LOG_T's range minimising ``nll(T)``, or 1 if none beats it."""
    fit = minimize_scalar(lambda log_t: nll(np.exp(log_t)), bounds=LOG_T, method="bounded",
                          options={"xatol": 1e-6})
    t = float(np.exp(fit.x))
    return t if nll(t) < nll(1.0) else 1.0


def fit_temperature(labels, logits, task: str) -> np.ndarray:
    """Single-label: one T (shape (1,)); multi-label: one per class (a class without a positive or negative in
    val keeps 1)."""
    labels, logits = np.asarray(labels), np.asarray(logits, dtype=np.float64)
    if task == "single-label":
        return np.array([best_temperature(lambda t: cross_entropy(labels, logits / t))])
    out = np.ones(logits.shape[1])
    for c in range(logits.shape[1]):
        y, z = counted(labels, logits, c)
        if (y > 0).any() and (y == 0).any():
            out[c] = best_temperature(lambda t, y=y, z=z: binary_cross_entropy(y, z / t))
    return out
