"""Inference over a split, the one helper behind validation, final predictions and cRT's features; test-time
augmentation (TTA): a model's logits averaged over views of each image."""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .distributed import gather

SCALE = 1.1  # hflip-scale's zoom: the central 1/1.1 of the image, resized back to its size


def hflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=[-1])


def zoom(x: torch.Tensor) -> torch.Tensor:
    """The image enlarged by SCALE (bilinear) and centre-cropped back to its size."""
    h, w = x.shape[-2:]
    big = F.interpolate(x, scale_factor=SCALE, mode="bilinear", align_corners=False)
    top, left = (big.shape[-2] - h) // 2, (big.shape[-1] - w) // 2
    return big[..., top:top + h, left:left + w]


# name -> the views whose logits are averaged (the first is the image itself)
TTA = {"none": (), "hflip": (hflip,), "hflip-scale": (hflip, zoom, lambda x: hflip(zoom(x)))}


def tta_forward(net: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """``net(x)``, or with ``tta`` the mean of the logits of x and of each of its views (images (N, C, H, W))."""
    out = net(x)
    if not TTA[tta]:
        return out
    for view in TTA[tta]:
        out = out + net(view(x))
    return out / (len(TTA[tta]) + 1)


@torch.no_grad()
def infer(net: nn.Module, loader, view: str, amp, tta: str = "none") -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(rows, labels, outputs) of every image of a split in index order, gathered from all ranks; ``tta``: logits
    averaged over views (``TTA``).

    ``outputs`` (logits or features) is float32 on the CPU. Each batch's output stays on the device until the
    split is done, so the GPU is never waited on mid-split."""
    net.eval()
    outputs, labels, rows = [], [], []
    for batch in loader.evaluate(view):
        with amp():
            outputs.append(tta_forward(net, loader.to_input(batch["x"]), tta).float())
        labels.append(batch["y"].numpy())
        rows.append(batch["rows"].numpy())
    parts = gather((np.concatenate(rows), np.concatenate(labels), torch.cat(outputs).cpu()))
    rows, labels = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
    outputs = torch.cat([p[2] for p in parts])
    order = np.argsort(rows, kind="stable")
    return rows[order], labels[order], outputs[torch.as_tensor(order)]
