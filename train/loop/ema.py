"""An exponential moving average of the weights (--ema-decay): updated on the device after every optimizer step,
validated instead of the trained weights, saved in best.pt when it is the best and in last.pt to resume."""
import copy

import torch
from torch import nn


class Ema:
    """``module``: a copy of the trained module whose parameters follow ``decay * ema + (1 - decay) * param``
    after each step; its buffers (BatchNorm statistics) are the trained module's, copied."""

    def __init__(self, trained: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(trained).eval().requires_grad_(False)
        self._pairs = list(zip(self.module.parameters(), trained.parameters()))
        self._buffers = list(zip(self.module.buffers(), trained.buffers()))

    @torch.no_grad()
    def update(self) -> None:
        """Device work only: one fused lerp over all parameters, no host read."""
        ema, live = zip(*self._pairs)
        torch._foreach_lerp_(list(ema), [p.detach() for p in live], 1.0 - self.decay)
        for mine, theirs in self._buffers:
            mine.copy_(theirs)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
