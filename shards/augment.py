"""Augmentation parameters as a pure function of (seed, epoch, stream, position).

Both input paths (plain PyTorch and DALI) draw the same flip, rotation angle
and crop window for the same sample, so their batches do not depend on the
worker count or on where a run was resumed, and they agree with each other.
"""
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentParams:
    flip: bool
    angle: float                       # degrees, counter-clockwise; nearest-neighbour, as torchvision's
                                       # RandomRotation (the paper's transform) does by default
    crop: tuple[float, float, float, float] | None  # (top, left, height, width) as fractions of the image

    def crop_pixels(self, h: int, w: int) -> tuple[int, int, int, int]:
        """The crop on the pixel grid of an h x w image (the whole image when there is none)."""
        if self.crop is None:
            return 0, 0, h, w
        top, left, ch, cw = self.crop
        return round(top * h), round(left * w), max(1, round(ch * h)), max(1, round(cw * w))


@dataclass(frozen=True)
class AugmentSpec:
    image_size: int
    hflip: bool = True
    rotation: float = 15.0
    rrc_scale: float = 1.0              # random-resized-crop minimum area; 1: no crop

    def draw(self, seed: int, epoch: int, stream: int, position: int) -> AugmentParams:
        u = np.random.default_rng([seed, epoch, stream, position]).random(6)
        crop = None
        if self.rrc_scale < 1.0:
            area = self.rrc_scale + (1 - self.rrc_scale) * u[2]
            ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[3])
            h, w = min(1.0, math.sqrt(area / ratio)), min(1.0, math.sqrt(area * ratio))
            crop = (u[4] * (1 - h), u[5] * (1 - w), h, w)
        return AugmentParams(bool(self.hflip and u[0] < 0.5), float((2 * u[1] - 1) * self.rotation), crop)
