"""Classification losses for long-tailed data, all called as ``loss(logits, target)``; one registry,
``LOSSES``, for both tasks: the single-label (softmax) losses below and the multi-label (sigmoid) losses
of ``train.methods.bce_losses``. Each entry says its task and whether it is built from the class counts.

``target`` is a LongTensor of class indices, a float (N, C) tensor of soft
targets, or the mixing triple ``(y_a, y_b, lam)``, which every loss turns into
lam * L(y_a) + (1 - lam) * L(y_b) (MixUp, arXiv 1710.09412), so a mixed batch
has no separate code path. Logits are taken in float32, so the losses run
under fp16/bf16 autocast.

- ``ce``: cross-entropy, optionally weighted (PyTorch's weighted mean).
- ``focal``: focal loss (Lin et al., arXiv 1708.02002), gamma 2, optional
  per-class alpha weights, plain batch mean as in the benchmark's code.
- ``ldam``: label-distribution-aware margin (Cao et al., arXiv 1906.07413):
  margins proportional to n_c^(-1/4), largest ``max_m``, scale ``s``; use it on
  a cosine classifier (``train.methods.heads.NormedLinear``) as in the LDAM paper, or on
  plain logits as the benchmark's code did.
- ``logit-adjusted``: logit-adjusted CE (Menon et al., arXiv 2007.07314),
  logits + tau log prior.
- ``balanced-softmax``: balanced softmax (Ren et al., arXiv 2007.10740),
  logits + log n_c; the same as logit-adjusted with tau 1.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .bce_losses import AsymmetricLoss, DistributionBalanced, FocalBCE, LogitAdjustedBCE
from .class_loss import ClassLoss, as_soft
from .heads import COSINE_SCALE


class CrossEntropy(ClassLoss):
    """Hard targets: PyTorch's weighted mean sum(w_y l) / sum(w_y); soft targets: mean of sum_c w_c t_c l_c."""

    def loss(self, logits, target):
        return F.cross_entropy(logits, target if target.is_floating_point() else target.long(),
                               weight=self._weight())


class Focal(ClassLoss):
    def __init__(self, num_classes, weights=None, gamma: float = 2.0):
        super().__init__(num_classes, weights)
        self.gamma = gamma

    def loss(self, logits, target):
        logp = F.log_softmax(logits, dim=1)
        focal = (1 - logp.exp()).clamp(min=0).pow(self.gamma) * -logp
        return (as_soft(target, logits.shape[1]) * self.weights * focal).sum(1).mean()


class LDAM(CrossEntropy):
    """CE of s * (logits - margin); ``scaled``: the logits carry s already (a cosine head times s), so only
    the margins are scaled: the same loss, and softmax of the saved logits means something."""

    def __init__(self, num_classes, weights=None, counts=None, max_m: float = 0.5, s: float = COSINE_SCALE,
                 scaled: bool = False):
        super().__init__(num_classes, weights)
        m = 1.0 / np.power(np.asarray(counts, dtype=np.float64), 0.25)
        m = m * (max_m / m.max()) if max_m > 0 else np.zeros_like(m)
        self.register_buffer("margins", torch.as_tensor(m, dtype=torch.float32))
        self.s, self.scaled = s, scaled

    def loss(self, logits, target):
        margins = as_soft(target, logits.shape[1]) * self.margins
        if self.scaled:
            return super().loss(logits - self.s * margins, target)
        return super().loss(self.s * (logits - margins), target)


class LogitAdjusted(CrossEntropy):
    def __init__(self, num_classes, weights=None, counts=None, tau: float = 1.0):
        super().__init__(num_classes, weights)
        prior = np.asarray(counts, dtype=np.float64) / np.sum(counts)
        self.register_buffer("shift", torch.as_tensor(tau * np.log(prior), dtype=torch.float32))

    def loss(self, logits, target):
        return super().loss(logits + self.shift, target)


@dataclass(frozen=True)
class Loss:
    """``make(counts, weights, N, **params)``: N, the number of training images, only matters where a class
    prior n_c / N does, which in the multi-label task is not n_c / sum(n). ``uses_counts``: built from the class
    counts (margins, priors, re-balancing), so every class needs training examples."""
    make: Callable
    task: str
    uses_counts: bool
    params: tuple[str, ...] = ()    # what --loss-param may set


SL, ML = "single-label", "multi-label"
DB_PARAMS = ("alpha", "beta", "mu", "neg_scale", "kappa", "gamma")
LOSSES = {
    "ce": Loss(lambda c, w, n, **p: CrossEntropy(len(c), w, **p), SL, uses_counts=False),
    "focal": Loss(lambda c, w, n, **p: Focal(len(c), w, **p), SL, uses_counts=False, params=("gamma",)),
    "ldam": Loss(lambda c, w, n, **p: LDAM(len(c), w, counts=c, **p), SL, uses_counts=True, params=("max_m", "s")),
    "logit-adjusted": Loss(lambda c, w, n, **p: LogitAdjusted(len(c), w, counts=c, **p), SL, uses_counts=True,
                           params=("tau",)),
    "balanced-softmax": Loss(lambda c, w, n, **p: LogitAdjusted(len(c), w, counts=c, tau=1.0, **p), SL,
                             uses_counts=True),
    "bce": Loss(lambda c, w, n, **p: FocalBCE(len(c), w, gamma=0.0, **p), ML, uses_counts=False),
    "focal-bce": Loss(lambda c, w, n, **p: FocalBCE(len(c), w, **p), ML, uses_counts=False, params=("gamma",)),
    "asl": Loss(lambda c, w, n, **p: AsymmetricLoss(len(c), w, **p), ML, uses_counts=False,
                params=("gamma_pos", "gamma_neg", "clip")),
    "distribution-balanced": Loss(lambda c, w, n, **p: DistributionBalanced(len(c), w, counts=c, num_images=n, **p),
                                  ML, uses_counts=True, params=DB_PARAMS),
    "logit-adjusted-bce": Loss(lambda c, w, n, **p: LogitAdjustedBCE(len(c), w, counts=c, num_images=n, **p), ML,
                               uses_counts=True, params=("tau",)),
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    return LOSSES[name]


def make_loss(name: str, counts, weights=None, num_images=None, **params) -> ClassLoss:
    """``counts``: training images (single-label) or positives (multi-label) per class; ``num_images``:
    training images, which the losses with class priors need (a multi-label image counts in several
    classes, so counts.sum() is not it)."""
    return get_loss(name).make(np.asarray(counts), weights, num_images, **params)
