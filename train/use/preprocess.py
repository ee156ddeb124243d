"""A run's preprocessing for any image: exactly what its evaluation images went through.

The ingest made the shards (grey conversion, area resize to the shards' size,
JPEG at the manifest's quality); the loader decoded them, resized to the run's
image size when that differs (``shards.torch_loader.apply_augment``'s eval
path) and normalised them for the run's input channels. ``Preprocess`` repeats
those steps, calling the same functions, so an original image gives the model
the same input as its packed copy did.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shards.images import BadImage, encode, load_grey, resize_area
from shards.augment import AugmentSpec
from shards.loader import normalisation, normalise, scale_shift
from shards.reader import decode
from shards.torch_loader import apply_augment

from .dicom import is_dicom, load_dicom_grey


def open_grey(image) -> np.ndarray:
    """A file path, PIL image or numpy array -> uint8 (H, W) grey by the ingest's rules (DICOM: ``train.use.dicom``)."""
    if isinstance(image, (str, Path)):
        try:
            dicom = is_dicom(Path(image))
        except OSError as e:
            raise BadImage(f"cannot read: {e.strerror or e}") from e
        if dicom:
            return load_dicom_grey(Path(image))
    return load_grey(image)


@dataclass(frozen=True)
class Preprocess:
    """image -> the run's model input: a float (channels, image_size, image_size) tensor, normalised.

    ``pixels`` gives the uint8 (1, S, S) image before normalisation and ``normalise`` does a batch of those, so
    a DataLoader's workers can do the first and the device the second."""
    shard_size: int
    shard_format: str
    shard_quality: int
    image_size: int
    channels: int
    mean: tuple[float, ...] | None = None  # the run's input scaling (config.json's input); None: ImageNet's
    std: tuple[float, ...] | None = None

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (tuple(self.mean), tuple(self.std)) if self.mean is not None else normalisation(self.channels)

    def pixels(self, image) -> torch.Tensor:
        img = resize_area(open_grey(image), self.shard_size)
        # the shards hold JPEG: its loss is part of what the model saw, so encode and decode as they were made
        arr = decode(encode(img, "jpeg", self.shard_quality)) if self.shard_format == "jpeg" else img
        return apply_augment(torch.from_numpy(arr.copy())[None], AugmentSpec(self.image_size), None)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1, S, S) -> float (N, channels, S, S), as ``ShardLoader.to_input`` does it."""
        return normalise(x, *scale_shift(self.channels, x.device, self.mean_std), channels_last=False)

    def __call__(self, image) -> torch.Tensor:
        return self.normalise(self.pixels(image)[None])[0]
