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


def open_grey(image, window: str = "sbit", any_modality: bool = False) -> np.ndarray:
    """A file path, PIL image or numpy array -> uint8 (H, W) grey by the ingest's rules (DICOM: ``train.use.dicom``);
    16-bit images by the shards' ``window`` (``shards.images.WINDOWS``)."""
    if isinstance(image, (str, Path)):
        try:
            dicom = is_dicom(Path(image))
        except OSError as e:
            raise BadImage(f"cannot read: {e.strerror or e}") from e
        if dicom:
            return load_dicom_grey(Path(image), any_modality)
    return load_grey(image, window=window)


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
    window16: str = "sbit"  # how the shards made 16-bit images 8-bit (manifest image.window16)
    any_modality: bool = False  # DICOM files of any modality, not radiographs only
    mean: tuple[float, ...] | None = None  # the run's input scaling (config.json's input); None: ImageNet's
    std: tuple[float, ...] | None = None

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (tuple(self.mean), tuple(self.std)) if self.mean is not None else normalisation(self.channels)

    def recipe(self) -> dict:
        """The steps as data (and in words): an export's metadata and its preprocess.py (``train.use.portable``)."""
        mean, std = self.mean_std
        deep = ("16-bit by its 0.5th-99.5th percentiles mapped to 0-255" if self.window16 == "percentile"
                else "16-bit scaled by its significant bits")
        steps = [f"grey: 8-bit as is, {deep}, colour by ITU-R 601 luma (shards/images.py load_grey)",
                 f"area resize to {self.shard_size} x {self.shard_size} (Pillow's box filter), as the shards were "
                 f"packed"]
        if self.shard_format == "jpeg":
            steps.append(f"JPEG encode at quality {self.shard_quality} and decode (Pillow), as the shards hold it")
        if self.image_size != self.shard_size:
            steps.append(f"resize to {self.image_size} x {self.image_size}, bilinear with antialiasing, uint8 "
                         f"(torchvision's resize, as the loader)")
        steps.append(f"(x / 255 - mean) / std in float32, the grey value in each of {self.channels} channel(s)")
        return {"shard_size": self.shard_size, "shard_format": self.shard_format,
                "shard_quality": self.shard_quality, "window16": self.window16, "image_size": self.image_size,
                "channels": self.channels,
                "mean": list(mean), "std": list(std), "steps": steps}

    def pixels(self, image) -> torch.Tensor:
        img = resize_area(open_grey(image, self.window16, self.any_modality), self.shard_size)
        # the shards hold JPEG: its loss is part of what the model saw, so encode and decode as they were made
        arr = decode(encode(img, "jpeg", self.shard_quality)) if self.shard_format == "jpeg" else img
        return apply_augment(torch.from_numpy(arr.copy())[None], AugmentSpec(self.image_size), None)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1, S, S) -> float (N, channels, S, S), as ``ShardLoader.to_input`` does it."""
        return normalise(x, *scale_shift(self.channels, x.device, self.mean_std), channels_last=False)

    def __call__(self, image) -> torch.Tensor:
        return self.normalise(self.pixels(image)[None])[0]
