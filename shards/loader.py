"""What every input path shares: the interface the trainer uses (``Loader``), the epoch's order, the step
count, normalisation on the device."""
import math
from typing import Iterator, Protocol

import pandas as pd
import torch

from .augment import AugmentSpec
from .reader import ShardSet
from .samplers import sample_order

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per input channel on the 0-1 scale: ImageNet's for 3; for a grey-only input (1) their
    averages, which suit a first convolution whose RGB weights were summed (``train.models.grey_input``)."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,)


def scale_shift(channels: int, device, mean_std=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 / std, -mean / std) on the 0-255 scale: ``normalise``'s constants, made once per device.
    ``mean_std``: the model's own (mean, std) on the 0-1 scale, else ``normalisation(channels)``."""
    mean, std = (torch.tensor(v, device=device) * 255 for v in (mean_std or normalisation(channels)))
    return 1 / std, -mean / std


def normalise(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 grey (N, 1, H, W) -> the model's float input (N, channels, H, W), normalised: one fused pass that
    broadcasts the grey value into the normalised channels, channels_last in memory unless asked otherwise."""
    gray = x.permute(0, 2, 3, 1).float()  # (N, H, W, 1)
    x = torch.addcmul(shift, gray, scale).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


class Loader(Protocol):
    """An input path as the trainer, validation and bench use it: the DALI and PyTorch readers of the shards
    (``ShardLoader``) and cRT's cached features (``train.loop.loaders.FeatureLoader``).

    A batch is a dict: ``x`` uint8 (N, 1, H, W) or already the model's input (see ``to_input``), ``y`` the
    targets (class indices, or multi-hot float rows for multi-label shards: ``ShardSet.targets``),
    ``rows`` positions in the split, and with a second stream (Balanced-MixUp) ``x2``, ``y2``."""
    ss: ShardSet
    device: torch.device
    train_rows: pd.DataFrame

    def steps_per_epoch(self) -> int:
        """Steps of this rank in an epoch (the last one partial)."""

    def epoch_length(self) -> int:
        """Images of this rank in an epoch."""

    def train(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """The epoch's batches in the sampler's order for (seed, epoch), from ``start_step`` on."""

    def evaluate(self, view: str) -> Iterator[dict]:
        """This rank's share of a split, in index order."""

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch's ``x`` as the model's input on the device."""


class ShardLoader(Loader):
    """The shards' readers' base: train batches in the sampler's order for (seed, epoch), from any step; eval
    batches in index order; subclasses give ``train`` and ``evaluate``."""

    def __init__(self, ss: ShardSet, sampler: str, augment: AugmentSpec, batch_size: int, seed: int, workers: int,
                 device: torch.device, channels_last: bool, second_stream: str | None = None,
                 rank: int = 0, world_size: int = 1, channels: int = 3, mean_std=None):
        ss.files.check()  # again: a tar cut since the dir was opened fails here, not as a worker's traceback
        self.ss, self.sampler, self.augment = ss, sampler, augment
        self.batch_size, self.seed, self.workers, self.device = batch_size, seed, workers, device
        self.channels_last, self.second_stream = channels_last, second_stream
        self.rank, self.world_size = rank, world_size
        self.train_rows = ss.view("train")
        self.labels = ss.targets(self.train_rows)
        self.channels = channels
        self.mean_std = mean_std or normalisation(channels)  # (mean, std) per channel, 0-1 scale
        self.scale, self.shift = scale_shift(channels, device, self.mean_std)

    def order(self, sampler: str, epoch: int, stream: int):
        return sample_order(sampler, self.labels, self.seed, epoch, rank=self.rank, world_size=self.world_size,
                            stream=stream)

    def eval_positions(self, view: str):
        """This rank's share of a split for evaluation: every world_size-th image (all of them when alone)."""
        return range(self.rank, len(self.ss.view(view)), self.world_size)

    def epoch_length(self) -> int:
        return math.ceil(len(self.labels) / self.world_size)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.epoch_length() / self.batch_size)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input on the device: float (N, channels, H, W), normalised, channels_last if asked.

        uint8 (N, 1, H, W) batches (the PyTorch path) are normalised here; DALI's arrive normalised.
        """
        x = x.to(self.device, non_blocking=True)
        if x.dtype != torch.uint8:
            return x
        return normalise(x, self.scale, self.shift, self.channels_last)
