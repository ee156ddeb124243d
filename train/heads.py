"""Classifier heads: a plain linear layer, or the cosine classifier of LDAM (arXiv 1906.07413)."""
import torch
import torch.nn.functional as F
from torch import nn


class NormedLinear(nn.Module):
    """Logits are cosines between the L2-normalised feature and each normalised class weight (in [-1, 1])."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))
        self.weight.data.renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()
