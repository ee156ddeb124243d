"""Choose the input path: DALI when installed (``--loader auto``), else plain PyTorch."""
import importlib.util

import torch

from shards.augment import AugmentSpec
from shards.errors import UsageError
from shards.reader import ShardSet
from shards.torch_loader import TorchLoader

from .config import FitConfig
from .methods import Method
from .mixing import get_mixing


def dali_available() -> bool:
    return importlib.util.find_spec("nvidia.dali") is not None


def loader_kind(cfg: FitConfig) -> str:
    """The input path that runs: ``--loader``, with auto resolved."""
    if cfg.loader == "auto":
        return "dali" if dali_available() else "torch"
    return cfg.loader


def make_loader(cfg: FitConfig, method: Method, ss: ShardSet, device: torch.device, rank: int = 0,
                world_size: int = 1):
    kind = loader_kind(cfg)
    augment = AugmentSpec(cfg.image_size, cfg.hflip, cfg.rotation, cfg.rrc_scale)
    second = "class-balanced" if get_mixing(method.mixing).second_stream else None
    args = dict(ss=ss, sampler=method.sampler, augment=augment, batch_size=cfg.batch_size, seed=cfg.seed,
                workers=cfg.workers, device=device, channels_last=cfg.channels_last, channels=cfg.channels,
                second_stream=second, rank=rank, world_size=world_size)
    if kind == "dali":
        if not dali_available():
            raise UsageError("--loader dali: NVIDIA DALI is not installed; pip install 'cxr-lt[dali]' (CUDA 13) "
                             "or 'cxr-lt[dali-cuda12]' (a CUDA 12 driver), or use --loader torch")
        from shards.dali import DaliLoader

        return DaliLoader(**args)
    return TorchLoader(**args)
