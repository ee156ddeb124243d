"""The base of every loss in ``train.methods.losses``: per-class weights and the target forms (see there)."""
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
