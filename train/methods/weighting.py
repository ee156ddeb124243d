"""Per-class loss weights and deferred re-weighting.

- ``rw``: inverse frequency N / (C n_c), what the benchmark (arXiv 2208.13365) calls RW.
- ``cb``: class-balanced by the effective number of samples (Cui et al., arXiv 1901.05555):
  (1 - beta) / (1 - beta^n_c), rescaled to sum to C.
- DRW, deferred re-weighting (Cao et al., LDAM, arXiv 1906.07413): no weights before
  ``start_epoch``, the chosen weights from it on, and the learning rate scaled there.
"""
from dataclasses import dataclass

import inspect

import numpy as np


def _to_sum_c(w: np.ndarray) -> np.ndarray:
    return w * len(w) / w.sum()


def _counts(counts) -> np.ndarray:
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or (n <= 0).any():
        raise ValueError(f"class counts must be positive, got {n.tolist()}; a class without training images "
                         "cannot be weighted")
    return n


def _none(n):
    return np.ones_like(n)


def _rw(n):
    return n.sum() / (len(n) * n)


def _cb(n, beta: float = 0.9999):
    if not 0 <= beta < 1:
        raise ValueError(f"cb needs 0 <= beta < 1, got {beta}")
    return _to_sum_c((1 - beta) / (1 - np.power(beta, n)))


SCHEMES = {"none": _none, "rw": _rw, "cb": _cb}


def scheme_params(scheme: str) -> tuple[str, ...]:
    """What --loss-param may set of a weighting scheme (cb: beta)."""
    return tuple(inspect.signature(SCHEMES[scheme]).parameters)[1:]


def class_weights(scheme: str, counts, **params) -> np.ndarray:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown weighting {scheme!r}; one of {', '.join(SCHEMES)}")
    return SCHEMES[scheme](_counts(counts), **params)


@dataclass(frozen=True)
class DeferredReweighting:
    """The weights and learning-rate factor in force at an epoch (0-based)."""
    weights: np.ndarray
    start_epoch: int = 10
    lr_factor: float = 0.1

    def weights_at(self, epoch: int) -> np.ndarray:
        return self.weights if epoch >= self.start_epoch else np.ones_like(self.weights)

    def lr_scale_at(self, epoch: int) -> float:
        return self.lr_factor if epoch >= self.start_epoch else 1.0
