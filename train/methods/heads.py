"""Classifier heads, by kind: a plain linear layer, one without a bias (tau-norm's), or the cosine classifier of
LDAM (arXiv 1906.07413), whose scale is the LDAM loss's s."""
import torch
import torch.nn.functional as F
from torch import nn

# a cosine head's logits are s x cosine with LDAM's s: the loss then adds only its margins, and softmax of the
# saved logits is a probability on the same footing as any other head's (bare cosines give a near-uniform one)
COSINE_SCALE = 30.0
HEADS = ("linear", "normed", "unbiased")


class NormedLinear(nn.Module):
    """Logits are ``scale`` times the cosines between the L2-normalised feature and each normalised class weight."""

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))
        self.weight.data.renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t())

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, scale={self.scale}"


def make_head(kind: str, num_features: int, num_classes: int, scale: float | None = None) -> nn.Module:
    """linear; normed: LDAM's cosine classifier times ``scale`` (COSINE_SCALE unless --loss-param s sets it);
    unbiased: linear without a bias (tau-norm's)."""
    if kind == "normed":
        return NormedLinear(num_features, num_classes, COSINE_SCALE if scale is None else scale)
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; one of {', '.join(HEADS)}")
    return nn.Linear(num_features, num_classes, bias=kind == "linear")


def loss_options(loss: str, head: nn.Module) -> dict:
    """Extra arguments of ``train.methods.losses.make_loss`` for this head: LDAM on a scaled cosine head must not
    multiply the logits by s a second time."""
    return {"scaled": True} if loss == "ldam" and isinstance(head, NormedLinear) and head.scale != 1.0 else {}
