"""The PyTorch reader's augmentation against outside oracles: numpy's exact quarter turn and torchvision's rotate."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from shards.augment import AugmentParams, AugmentSpec
from shards.torch_loader import apply_augment, rotate

from conftest import ROOT


@pytest.mark.parametrize("shape", [(32, 32), (33, 33), (64, 64)])
def test_a_quarter_turn_is_numpys_counter_clockwise_rot90_exactly(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(rotate(img, 90.0), np.rot90(img))
    assert np.array_equal(rotate(img, -90.0), np.rot90(img, -1))


@pytest.mark.parametrize("size", [32, 256, 512])
def test_rotation_is_torchvisions_up_to_the_odd_rounding(size):
    """torchvision's nearest-neighbour rotate, the reader's until OpenCV's (17-23x faster) replaced it: the same
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


FORKED_WORKERS = """
import sys
import cv2, numpy as np, torch
cv2.warpAffine(np.zeros((2048, 2048), np.uint8), np.eye(2, 3), (2048, 2048))  # OpenCV's pool starts in the parent
from shards.augment import AugmentSpec
from shards.reader import open_shards
from shards.torch_loader import TorchLoader
loader = TorchLoader(ss=open_shards(sys.argv[1]), sampler="instance", augment=AugmentSpec(32), batch_size=8, seed=0,
                     workers=2, device=torch.device("cpu"), channels_last=False)
print("rotated", sum(len(b["y"]) for b in loader.train(0, 0)))
"""


def test_forked_workers_rotate_after_the_parent_used_opencv(shards_dir):
    """OpenCV's thread pool does not survive a fork: a worker that reconfigures the pool it inherited hangs
    (the suite once did). The reader sets one thread in the parent and leaves the workers' OpenCV alone."""
    try:
        r = subprocess.run([sys.executable, "-c", FORKED_WORKERS, str(shards_dir)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the DataLoader workers hung in OpenCV")
    assert r.returncode == 0 and r.stdout.startswith("rotated "), r.stdout + r.stderr
