"""Classification losses for long-tailed data, all called as ``loss(logits, target)``.

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
from torch import nn


class ClassLoss(nn.Module):
    """Base: holds the per-class weights (replaceable, for DRW) and dispatches the target forms."""

    def __init__(self, num_classes: int, weights=None):
        super().__init__()
        self.register_buffer("weights", torch.ones(num_classes))
        self.weighted = weights is not None
        if weights is not None:
            self.set_weights(weights)

    def set_weights(self, weights) -> None:
        self.weights.copy_(torch.as_tensor(np.asarray(weights), dtype=torch.float32))
        self.weighted = True

    def forward(self, logits: torch.Tensor, target) -> torch.Tensor:
        logits = logits.float()
        if isinstance(target, tuple):
            y_a, y_b, lam = target
            return lam * self.loss(logits, y_a) + (1 - lam) * self.loss(logits, y_b)
        return self.loss(logits, target)

    def _weight(self):
        return self.weights if self.weighted else None

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def as_soft(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices -> one-hot floats; soft targets pass through."""
    if target.is_floating_point():
        return target.float()
    return F.one_hot(target.long(), num_classes).float()


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


LOSSES = {
    "ce": lambda c, w, **p: CrossEntropy(len(c), w, **p),
    "focal": lambda c, w, **p: Focal(len(c), w, **p),
    "ldam": lambda c, w, **p: LDAM(len(c), w, counts=c, **p),
    "logit-adjusted": lambda c, w, **p: LogitAdjusted(len(c), w, counts=c, **p),
    "balanced-softmax": lambda c, w, **p: LogitAdjusted(len(c), w, counts=c, tau=1.0, **p),
}


def make_loss(name: str, counts, weights=None, **params) -> ClassLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    return LOSSES[name](np.asarray(counts), weights, **params)
