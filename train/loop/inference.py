"""Inference over a split, the one helper behind validation, final predictions and cRT's features."""
import numpy as np
import torch
from torch import nn

from .distributed import gather


@torch.no_grad()
def infer(net: nn.Module, loader, view: str, amp) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(rows, labels, outputs) of every image of a split in index order, gathered from all ranks.

    ``outputs`` (logits or features) is float32 on the CPU. Each batch's output stays on the device until the
    split is done, so the GPU is never waited on mid-split."""
    net.eval()
    outputs, labels, rows = [], [], []
    for batch in loader.evaluate(view):
        with amp():
            outputs.append(net(loader.to_input(batch["x"])).float())
        labels.append(batch["y"].numpy())
        rows.append(batch["rows"].numpy())
    parts = gather((np.concatenate(rows), np.concatenate(labels), torch.cat(outputs).cpu()))
    rows, labels = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
    outputs = torch.cat([p[2] for p in parts])
    order = np.argsort(rows, kind="stable")
    return rows[order], labels[order], outputs[torch.as_tensor(order)]
