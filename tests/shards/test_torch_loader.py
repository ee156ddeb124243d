"""The PyTorch reader's augmentation against outside oracles: numpy's exact quarter turn and torchvision's rotate."""
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from shards.augment import AugmentParams, AugmentSpec
from shards.torch_loader import apply_augment, rotate


@pytest.mark.parametrize("shape", [(32, 32), (33, 33), (64, 64)])
def test_a_quarter_turn_is_numpys_counter_clockwise_rot90_exactly(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(rotate(img, 90.0), np.rot90(img))
    assert np.array_equal(rotate(img, -90.0), np.rot90(img, -1))


@pytest.mark.parametrize("size", [32, 256, 512])
def test_rotation_is_torchvisions_up_to_the_odd_rounding(size):
    """torchvision's nearest-neighbour rotate, the reader's until OpenCV's (10-20x faster) replaced it: the same
    image but for a pixel whose source coordinate rounds the other way, about 1 in 100,000."""
    rng = np.random.default_rng(size)
    differ = []
    for angle in rng.uniform(-15, 15, 40):
        img = rng.integers(0, 256, (size, size), dtype=np.uint8)
        want = TF.rotate(torch.from_numpy(img)[None], float(angle), interpolation=TF.InterpolationMode.NEAREST)
        differ.append(np.mean(rotate(img, float(angle)) != want[0].numpy()))
    assert np.mean(differ) < 1e-4 and max(differ) < 1e-3


def test_flip_then_rotation_is_torchvisions_flip_then_rotate():
    img = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 48, 48), dtype=np.uint8))
    got = apply_augment(img, AugmentSpec(48), AugmentParams(flip=True, angle=12.5, crop=None))
    want = TF.rotate(TF.horizontal_flip(img), 12.5, interpolation=TF.InterpolationMode.NEAREST)
    assert got.dtype == torch.uint8 and got.shape == (1, 48, 48)
    assert 0 < (got != img).float().mean() and (got != want).float().mean() < 1e-3
