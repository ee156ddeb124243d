"""An estimate of a recipe's GPU memory (a T4 has 16 GB), measured on the CPU: parameters, gradients, optimizer
state and EMA in fp32, plus what one forward saves for backward under 16-bit autocast: the activations of one
image times the batch, and once a step the 16-bit copies of the weights that autocast makes (measured apart by
a forward of one image and one of two). On the CPU autocast is bf16 and keeps BatchNorm / LayerNorm outputs in
fp32, so this leans high. An estimate: it leaves out cuDNN workspaces, the allocator's fragmentation and the CUDA
context (about 0.5-1 GB); a GPU run (scripts/gpu-check.sh) measures the real peak.

  python scripts/memory_estimate.py [MODEL:PX:BATCH ...]
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's train/, not an installed one
from train.models import build_model  # noqa: E402

RECIPES = ["resnet50:256:256", "convnext_tiny.fb_in22k_ft_in1k:256:64", "convnext_tiny.fb_in22k_ft_in1k:512:64",
           "convnext_small.fb_in22k_ft_in1k:256:32", "convnext_small.fb_in22k_ft_in1k:512:32"]
GB = 1e9


def saved_bytes(model: torch.nn.Module, px: int, batch: int) -> int:
    """Bytes of the tensors a forward of ``batch`` images keeps for backward, under bf16 autocast (fp16's size)."""
    total, seen = 0, set()

    def pack(t):
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen:  # a tensor saved by two operations is stored once
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    x = torch.randn(batch, 3, px, px)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
        model(x).float().sum().backward()
    return total


def estimate(spec: str) -> str:
    name, px, batch = spec.rsplit(":", 2)
    px, batch = int(px), int(batch)
    model = build_model(name, 20, "none").train()
    n = sum(p.numel() for p in model.parameters())
    states = n * 4 * 5 / GB  # weights, gradients, AdamW's two moments, the EMA copy: fp32 each
    one, two = saved_bytes(model, px, 1), saved_bytes(model, px, 2)
    per_image, per_step = two - one, 2 * one - two  # per_step: the weights' 16-bit copies, whatever the batch
    acts = (per_image * batch + per_step) / GB
    total = states + acts
    fits = "yes" if total < 14 else "no"  # 16 GB less the CUDA context and headroom
    return f"| {name} | {px} | {batch} | {n / 1e6:.1f}M | {states:.2f} | {acts:.2f} | {total:.1f} | {fits} |"


def main(specs):
    print("| model | px | batch | parameters | weights+grads+AdamW+EMA GB | activations GB (16-bit) | total GB "
          "| fits 16 GB (estimate) |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in specs or RECIPES:
        print(estimate(spec), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
