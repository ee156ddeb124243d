"""Choose the input path: DALI when installed (``--loader auto``), else plain PyTorch."""
import importlib.util

import torch

from shards.augment import AugmentSpec
from shards.reader import ShardSet
from shards.torch_loader import TorchLoader

from .config import FitConfig
from .methods import Method


def dali_available() -> bool:
    return importlib.util.find_spec("nvidia.dali") is not None


def make_loader(cfg: FitConfig, method: Method, ss: ShardSet, device: torch.device, rank: int = 0,
                world_size: int = 1):
    kind = cfg.loader
    if kind == "auto":
        kind = "dali" if dali_available() else "torch"
    augment = AugmentSpec(cfg.image_size, cfg.hflip, cfg.rotation, cfg.rrc_scale)
    second = "class-balanced" if method.mixing == "balanced-mixup" else None
    args = dict(ss=ss, sampler=method.sampler, augment=augment, batch_size=cfg.batch_size, seed=cfg.seed,
                workers=cfg.workers, device=device, channels_last=cfg.channels_last, channels=cfg.channels,
                second_stream=second, rank=rank, world_size=world_size)
    if kind == "dali":
        if not dali_available():
            raise RuntimeError("--loader dali: NVIDIA DALI is not installed; pip install 'cxr-lt[dali]' "
                               "(nvidia-dali-cuda130), or use --loader torch")
        from shards.dali import DaliLoader

        return DaliLoader(**args)
    return TorchLoader(**args)
