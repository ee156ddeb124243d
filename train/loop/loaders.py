"""The input paths a run trains on, one interface (``shards.loader.Loader``): DALI when installed
(``--loader auto``), else the plain-PyTorch reader of the same shards, and cRT's cached backbone features."""
import importlib.util

import numpy as np
import torch
from torch import nn

from shards.augment import AugmentSpec
from shards.errors import UsageError
from shards.loader import Loader
from shards.torch_loader import TorchLoader

from ..config import FitConfig
from ..methods.mixing import get_mixing
from .distributed import World
from .inference import infer


def dali_available() -> bool:
    return importlib.util.find_spec("nvidia.dali") is not None


def loader_kind(cfg: FitConfig) -> str:
    """The input path that runs: ``--loader``, with auto resolved."""
    if cfg.loader == "auto":
        return "dali" if dali_available() else "torch"
    return cfg.loader


def make_loader(ctx, world: World | None = None) -> Loader:
    """The run's loader, this rank's share of each epoch (``world``: the run's ranks unless given)."""
    cfg, world = ctx.cfg, world or ctx.world
    kind = loader_kind(cfg)
    augment = AugmentSpec(cfg.image_size, cfg.hflip, cfg.rotation, cfg.rrc_scale)
    second = "class-balanced" if get_mixing(ctx.method.mixing).second_stream else None
    args = dict(ss=ctx.ss, sampler=ctx.method.sampler, augment=augment, batch_size=cfg.batch_size, seed=cfg.seed,
                workers=cfg.workers, device=ctx.device, channels_last=cfg.channels_last, channels=cfg.channels,
                mean_std=ctx.mean_std,
                second_stream=second, rank=world.rank, world_size=world.size)
    if kind == "dali":
        if not dali_available():
            raise UsageError("--loader dali: NVIDIA DALI is not installed; pip install 'cxr-lt[dali]' (CUDA 13) "
                             "or 'cxr-lt[dali-cuda12]' (a CUDA 12 driver), or use --loader torch")
        from shards.dali import DaliLoader

        return DaliLoader(**args)
    return TorchLoader(**args)


class FeatureLoader(Loader):
    """cRT on features computed once (no augmentation): same sampler order, batches of feature vectors."""

    def __init__(self, base, backbone: nn.Module, amp):
        self.base, self.ss, self.device, self.train_rows = base, base.ss, base.device, base.train_rows
        self.train_feats = self._features("train", backbone, amp)[2]
        self._views = {}
        self._backbone, self._amp = backbone, amp

    def steps_per_epoch(self) -> int:
        return self.base.steps_per_epoch()

    def epoch_length(self) -> int:
        return self.base.epoch_length()

    def train(self, epoch: int, start_step: int = 0):
        order = self.base.order(self.base.sampler, epoch, 0)
        bs = self.base.batch_size
        for step in range(start_step, self.steps_per_epoch()):
            idx = order[step * bs:(step + 1) * bs]
            yield {"x": self.train_feats[torch.as_tensor(idx).to(self.device, non_blocking=True)],
                   "y": torch.as_tensor(self.base.labels[idx]), "rows": torch.as_tensor(idx)}

    def evaluate(self, view: str):
        """This rank's share of the split's features (see ``ShardLoader.eval_positions``)."""
        if view not in self._views:
            self._views[view] = self._features(view, self._backbone, self._amp)
        rows, labels, feats = self._views[view]
        mine = np.asarray(self.base.eval_positions(view))
        bs = self.base.batch_size
        for lo in range(0, len(mine), bs):
            idx = mine[lo:lo + bs]
            yield {"x": feats[torch.as_tensor(idx, device=feats.device)], "y": torch.as_tensor(labels[idx]),
                   "rows": torch.as_tensor(rows[idx])}

    def _features(self, view: str, backbone: nn.Module, amp):
        """(rows, labels, features on the device) of a split in index order."""
        rows, labels, feats = infer(backbone, self.base, view, amp)
        return rows, labels, feats.to(self.device)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)
