"""Classification losses for long-tailed data, all called as ``loss(logits, target)``; one registry,
``LOSSES``, for both tasks: the single-label (softmax) losses below and the multi-label (sigmoid) losses
of ``train.bce_losses`` (``loss_task`` says which task a loss is for).

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
  a cosine classifier (``train.heads.NormedLinear``) as in the LDAM paper, or on
  plain logits as the benchmark's code did.
- ``logit-adjusted``: logit-adjusted CE (Menon et al., arXiv 2007.07314),
  logits + tau log prior.
- ``balanced-softmax``: balanced softmax (Ren et al., arXiv 2007.10740),
  logits + log n_c; the same as logit-adjusted with tau 1.
"""
import numpy as np
import torch
import torch.nn.functional as F

from .bce_losses import AsymmetricLoss, DistributionBalanced, FocalBCE, LogitAdjustedBCE
from .class_loss import ClassLoss, as_soft


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

    def __init__(self, num_classes, weights=None, counts=None, max_m: float = 0.5, s: float = 30.0,
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


# every factory takes (counts, weights, N, **params): N, the number of training images, only matters where
# a class prior n_c / N does, which in the multi-label task is not n_c / sum(n)
LOSSES = {
    "ce": lambda c, w, n, **p: CrossEntropy(len(c), w, **p),
    "focal": lambda c, w, n, **p: Focal(len(c), w, **p),
    "ldam": lambda c, w, n, **p: LDAM(len(c), w, counts=c, **p),
    "logit-adjusted": lambda c, w, n, **p: LogitAdjusted(len(c), w, counts=c, **p),
    "balanced-softmax": lambda c, w, n, **p: LogitAdjusted(len(c), w, counts=c, tau=1.0, **p),
    "bce": lambda c, w, n, **p: FocalBCE(len(c), w, gamma=0.0, **p),
    "focal-bce": lambda c, w, n, **p: FocalBCE(len(c), w, **p),
    "asl": lambda c, w, n, **p: AsymmetricLoss(len(c), w, **p),
    "distribution-balanced": lambda c, w, n, **p: DistributionBalanced(len(c), w, counts=c, num_images=n, **p),
    "logit-adjusted-bce": lambda c, w, n, **p: LogitAdjustedBCE(len(c), w, counts=c, num_images=n, **p),
}
MULTI_LABEL = ("bce", "focal-bce", "asl", "distribution-balanced", "logit-adjusted-bce")
# the losses built from the class counts (margins, priors, re-balancing): every class needs training examples
USES_COUNTS = ("ldam", "logit-adjusted", "balanced-softmax", "distribution-balanced", "logit-adjusted-bce")
LOSS_TASK = {name: "multi-label" if name in MULTI_LABEL else "single-label" for name in LOSSES}


def _known(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    return name


def loss_task(name: str) -> str:
    """'single-label' (softmax over the classes) or 'multi-label' (a sigmoid per class)."""
    return LOSS_TASK[_known(name)]


def make_loss(name: str, counts, weights=None, num_images=None, **params) -> ClassLoss:
    """``counts``: training images (single-label) or positives (multi-label) per class; ``num_images``:
    training images, which the losses with class priors need (a multi-label image counts in several
    classes, so counts.sum() is not it)."""
    return LOSSES[_known(name)](np.asarray(counts), weights, num_images, **params)
