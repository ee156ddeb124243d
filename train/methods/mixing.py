"""Mixing as pure functions returning (x, y_a, y_b, lam); the loss is lam L(y_a) + (1 - lam) L(y_b).

- MixUp (Zhang et al., arXiv 1710.09412): lam ~ Beta(alpha, alpha), the partner
  of each image from a permutation of the batch.
- Balanced-MixUp (Galdran et al., arXiv 2109.09850): an instance-sampled batch
  mixed with a separate class-balanced-sampled batch. As in the authors' code,
  lam_b ~ Beta(alpha, 1) is the share of the balanced batch; here that is
  lam = 1 - lam_b on the instance batch (y_a). The benchmark's code mixed a batch
  with itself, which reduces to plain training; this one never does.
- No mixing is lam = 1 with y_b = y_a: the same step, no branch.

``MIXINGS`` names each one with what the step and the loaders need to know:
the function (uniform signature) and whether it takes a second, class-balanced stream.
lam is drawn on the host from a seeded numpy generator (its state is checkpointed),
so nothing here reads a device value.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def no_mix(x: torch.Tensor, y: torch.Tensor):
    return x, y, y, 1.0


def mix_pair(x_a, y_a, x_b, y_b, lam: float):
    """The exact convex combination lam * x_a + (1 - lam) * x_b."""
    return lam * x_a + (1 - lam) * x_b, y_a, y_b, lam


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, rng: np.random.Generator, perm=None):
    """``rng`` (seeded, its state saved in checkpoints) draws lam and, unless given, the permutation."""
    lam = float(rng.beta(alpha, alpha))
    if perm is None:
        perm = rng.permutation(x.shape[0])
    # a host-to-device copy that does not wait for the device's queue
    perm = torch.as_tensor(perm).to(x.device, non_blocking=True)
    return mix_pair(x, y, x[perm], y[perm], lam)


def balanced_mixup(x_inst, y_inst, x_bal, y_bal, alpha: float, rng: np.random.Generator):
    lam_balanced = float(rng.beta(alpha, 1.0))
    return mix_pair(x_inst, y_inst, x_bal, y_bal, 1.0 - lam_balanced)


@dataclass(frozen=True)
class Mixing:
    """``mix(x, y, second, alpha, rng)``; ``second`` is the class-balanced (x2, y2) when ``second_stream``."""
    mix: Callable
    second_stream: bool = False


MIXINGS = {
    "none": Mixing(lambda x, y, second, alpha, rng: no_mix(x, y)),
    "mixup": Mixing(lambda x, y, second, alpha, rng: mixup(x, y, alpha, rng)),
    "balanced-mixup": Mixing(lambda x, y, second, alpha, rng: balanced_mixup(x, y, *second, alpha, rng),
                             second_stream=True),
}


def get_mixing(name: str) -> Mixing:
    if name not in MIXINGS:
        raise ValueError(f"unknown mixing {name!r}; one of: {', '.join(MIXINGS)}")
    return MIXINGS[name]
