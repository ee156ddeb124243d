"""One training step, in one place: mix -> forward and loss under autocast -> non-finite check ->
backward, gradient clipping and optimizer step -> EMA update -> accumulate.

Nothing in a step reads a device value on the host (``.item()``, ``.cpu()``, ``float(t)``, ``if t:``):
such a read waits until the GPU has drained its queue, and the loader's next batch is then prepared while
the GPU idles. The running sums stay on the device (``train.state.EpochTotals``); the fp16 skipped-step
count is a device tensor; the loss's finiteness is read one step late, from pinned host memory, when the
GPU has long computed it. ``tests/train/loop/test_step.py`` counts host reads to keep it so.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..methods.mixing import Mixing
from .distributed import distribute
from .ema import Ema
from .state import EpochTotals


class NonFiniteLoss(RuntimeError):
    pass


def make_optimizer(params, lr: float, device: torch.device, kind: str = "adam",
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (the paper), AdamW (decoupled weight decay) or SGD (momentum 0.9, Nesterov); fused on CUDA: one
    kernel for all parameters, and with a GradScaler it takes the inf check on the device (the unfused step
    reads it on the host). ``params``: tensors, or groups (``param_groups``) with their own weight decay."""
    fused = device.type == "cuda"
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay, fused=fused)
    opt = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return opt(params, lr=lr, weight_decay=weight_decay, fused=fused)


def param_groups(trained: nn.Module, weight_decay: float, head_lr_factor: float) -> list:
    """The trainable parameters of ``trained``: one plain list when every parameter is treated alike (the
    paper), else groups by (head or backbone, decayed or not). Biases and norm layers' weights (1-d) are not
    decayed; the head (``trained.head``, or all of ``trained`` when it is a head alone) has ``lr_factor``."""
    params = [p for p in trained.parameters() if p.requires_grad]
    if not weight_decay and head_lr_factor == 1.0:
        return params
    head = {id(p) for p in getattr(trained, "head", trained).parameters()}
    groups = {}
    for p in trained.parameters():
        if not p.requires_grad:
            continue
        key = (id(p) in head, p.ndim > 1)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decayed else 0.0,
             "lr_factor": head_lr_factor if is_head else 1.0} for (is_head, decayed), ps in sorted(groups.items())]


def optimize(loss: torch.Tensor, optimizer, scaler: torch.amp.GradScaler, grad_clip: float = 0.0):
    """Backward and optimizer step through the GradScaler (enabled for fp16 only).

    Returns 1 on the device when the scaler skipped the step for inf/NaN gradients, else 0. The scaler
    lowers its scale exactly then; ``GradScaler._scale`` (private: the scale as a device tensor, which
    the public ``get_scale()`` reads on the host) is compared before and after its update."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:  # on unscaled gradients; clip_grad_norm_ computes and applies the norm on the device
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip,
                                       foreach=True)
    before = scaler._scale.clone() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    return 0 if before is None else (scaler._scale < before).long()


class NonFiniteWatch:
    """``torch.isfinite(loss)`` of each step, copied without waiting into pinned host memory and read at
    the next step (or at ``settle``, which every checkpoint and epoch end calls first): a non-finite loss
    is caught one step late, and no weights it touched are ever saved. ``report(where, loss)`` handles it."""

    def __init__(self, device: torch.device, report: Callable):
        cuda = device.type == "cuda"
        self._flag = torch.ones((), dtype=torch.bool, pin_memory=cuda)
        self._host = self._flag.numpy()  # a view of the same memory, read without a tensor call
        self._event = torch.cuda.Event() if cuda else None
        self._pending = None
        self.report = report

    def watch(self, loss: torch.Tensor, where) -> None:
        self.settle()
        self._flag.copy_(torch.isfinite(loss.detach()), non_blocking=True)
        if self._event is not None:
            self._event.record()
        self._pending = (where, loss.detach())

    def settle(self) -> None:
        """Read the pending step's flag (waiting for that step only) and report a non-finite loss."""
        if self._pending is None:
            return
        if self._event is not None:
            self._event.synchronize()
        (where, loss), self._pending = self._pending, None
        if not self._host[()]:
            self.report(where, loss)


@dataclass
class StepParts:
    """What a step works with. ``net`` is the module trained (DDP-wrapped or compiled as the run asks)."""
    net: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp: Callable
    mixing: Mixing
    alpha: float
    rng: np.random.Generator
    to_input: Callable
    device: torch.device
    grad_clip: float = 0.0
    ema: Ema | None = None


def build_step(ctx, *, trained: nn.Module, loss_fn: nn.Module, mixing: Mixing, rng: np.random.Generator,
               to_input: Callable) -> StepParts:
    """The step's parts, as the trainer and the bench both run it: ``trained`` is the module whose trainable
    parameters the optimizer updates (--optimizer, --weight-decay, --head-lr-factor), run DDP-wrapped and
    compiled as the run (``ctx``) asks, with --grad-clip and an --ema-decay average of ``trained``."""
    cfg = ctx.cfg
    return StepParts(
        net=distribute(trained, cfg, ctx.device, ctx.world), loss_fn=loss_fn,
        optimizer=make_optimizer(param_groups(trained, cfg.weight_decay, cfg.head_lr_factor), cfg.lr, ctx.device,
                                 cfg.optimizer, cfg.weight_decay),
        scaler=torch.amp.GradScaler(ctx.device.type, enabled=ctx.precision == "fp16"), amp=ctx.amp, mixing=mixing,
        alpha=cfg.mixup_alpha, rng=rng, to_input=to_input, device=ctx.device, grad_clip=cfg.grad_clip,
        ema=Ema(trained, cfg.ema_decay) if cfg.ema_decay else None)


def train_step(p: StepParts, batch: dict, totals: EpochTotals, watch: NonFiniteWatch, where=None) -> None:
    """One step on a loader's batch; ``where`` (epoch, step, rows) names the batch if its loss is not finite."""
    x, y = p.to_input(batch["x"]), batch["y"].to(p.device, non_blocking=True)
    second = (p.to_input(batch["x2"]), batch["y2"].to(p.device, non_blocking=True)) if p.mixing.second_stream \
        else None
    x, y_a, y_b, lam = p.mixing.mix(x, y, second, p.alpha, p.rng)
    with p.amp():
        logits = p.net(x)
        loss = p.loss_fn(logits, (y_a, y_b, lam))
    watch.watch(loss, where)
    skipped = optimize(loss, p.optimizer, p.scaler, p.grad_clip)
    if p.ema is not None:
        p.ema.update()
    totals.add(loss, logits, y_a, skipped)
