"""DALI (CPU-only mode here) against the plain-PyTorch reader: same keys, labels and order; pixels within a
stated tolerance. On a GPU the same checks run with GPU decoding (marked gpu)."""
import pytest
import torch

from shards.augment import AugmentSpec
from shards.dali import DaliLoader
from shards.loader import IMAGENET_MEAN, IMAGENET_STD, normalisation
from shards.reader import open_shards
from shards.samplers import SAMPLERS
from shards.torch_loader import TorchLoader

RESIZE_TOLERANCE = 3  # grey levels: DALI's and torchvision's antialiased bilinear resize differ by rounding


def pair(shards_dir, device="cpu", **kw):
    args = dict(ss=open_shards(shards_dir), sampler="instance", augment=AugmentSpec(32), batch_size=16, seed=3,
                workers=0, device=torch.device(device), channels_last=False)
    args.update(kw)
    return DaliLoader(**args), TorchLoader(**args)


def cat(batches, key):
    return torch.cat([b[key].cpu() for b in batches])


def grey(loader, batches):
    """The model input of every batch, back in grey levels (0-255, float), one channel per image."""
    x = torch.cat([loader.to_input(b["x"]).cpu() for b in batches])
    return x[:, 0] * (255 * IMAGENET_STD[0]) + 255 * IMAGENET_MEAN[0]


@pytest.mark.parametrize("view", ["val", "test", "balanced-test"])
def test_eval_reads_every_image_exactly_once_identical_to_the_torch_reader(shards_dir, view):
    dali, plain = pair(shards_dir)
    a, b = list(dali.evaluate(view)), list(plain.evaluate(view))
    rows = cat(a, "rows")
    assert len(rows) == len(open_shards(shards_dir).view(view)) == len(set(rows.tolist()))
    assert torch.equal(rows, cat(b, "rows")) and torch.equal(cat(a, "y"), cat(b, "y"))
    # same size as the shards: the same JPEG decode, so the same grey levels up to float rounding
    assert (grey(dali, a) - grey(plain, b)).abs().max() < 1e-3


def test_eval_with_a_resize_stays_within_the_stated_tolerance(shards_dir):
    dali, plain = pair(shards_dir, augment=AugmentSpec(24))
    diff = (grey(dali, list(dali.evaluate("val"))) - grey(plain, list(plain.evaluate("val")))).abs()
    assert diff.max() <= RESIZE_TOLERANCE + 1e-3 and diff.mean() < 0.5


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_gives_the_same_order_from_any_step(shards_dir, sampler):
    dali, plain = pair(shards_dir, sampler=sampler, augment=AugmentSpec(32, rrc_scale=0.6))
    for epoch, start in ((0, 0), (1, 2), (2, 0)):
        a, b = list(dali.train(epoch, start)), list(plain.train(epoch, start))
        assert len(a) == len(b) == dali.steps_per_epoch() - start
        assert torch.equal(cat(a, "rows"), cat(b, "rows")) and torch.equal(cat(a, "y"), cat(b, "y"))
        # the same flips, angles and crops: augmented pixels agree up to interpolation
        diff = (grey(dali, a) - grey(plain, b)).abs().mean()
        assert diff < 3.0


def test_balanced_mixup_second_stream_and_parallel_workers(shards_dir):
    dali, plain = pair(shards_dir, second_stream="class-balanced", workers=2)
    a, b = list(dali.train(0, 1)), list(plain.train(0, 1))
    assert torch.equal(cat(a, "y2"), cat(b, "y2")) and torch.equal(cat(a, "rows"), cat(b, "rows"))


def test_ranks_read_equal_disjoint_slices(shards_dir):
    seen = []
    for rank in range(2):
        dali, _ = pair(shards_dir, rank=rank, world_size=2)
        rows = cat(list(dali.train(0, 0)), "rows")
        assert len(rows) == dali.epoch_length()
        seen.append(rows)
    n = len(open_shards(shards_dir).view("train"))
    assert len(seen[0]) == len(seen[1]) and len(set(torch.cat(seen).tolist())) == n


@pytest.mark.parametrize("channels", [3, 1])
def test_both_paths_give_the_model_its_channels_normalised(shards_dir, channels):
    dali, plain = pair(shards_dir, channels=channels)
    raw = next(plain.evaluate("val"))["x"]
    assert raw.dtype == torch.uint8 and raw.shape[1] == 1  # the PyTorch path normalises in to_input
    mean, std = normalisation(channels)
    assert len(mean) == len(std) == channels and (channels == 1 or (mean, std) == (IMAGENET_MEAN, IMAGENET_STD))
    for x in (plain.to_input(raw), dali.to_input(next(dali.evaluate("val"))["x"])):
        assert x.shape == (len(raw), channels, 32, 32) and x.dtype == torch.float32
        for c in range(channels):
            assert torch.allclose(x[:, c] * std[c] + mean[c], raw[:, 0].float() / 255, atol=1e-5)


def test_flip_then_rotation_matches_the_torch_path(shards_dir):
    """DALI mirrors after rotating by the negated angle: the same image as flip-then-rotate."""
    dali, plain = pair(shards_dir, sampler="instance")
    a, b = list(dali.train(0, 0)), list(plain.train(0, 0))
    differ = (grey(dali, a) - grey(plain, b)).abs() > 1e-3
    assert differ.float().mean() < 1e-4  # a nearest-neighbour tie may round apart at a handful of pixels


def test_channels_last_memory_and_balanced_mixup_second_stream_are_model_inputs(shards_dir):
    dali, _ = pair(shards_dir, second_stream="class-balanced", channels_last=True)
    batch = next(dali.train(0, 0))
    for key in ("x", "x2"):
        assert batch[key].dtype == torch.float32 and batch[key].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.gpu
def test_gpu_decoding_matches_the_cpu_reader(shards_dir):
    gpu, _ = pair(shards_dir, device="cuda")
    cpu, _ = pair(shards_dir)
    a, b = list(gpu.evaluate("test")), list(cpu.evaluate("test"))
    assert torch.equal(cat(a, "rows"), cat(b, "rows"))
    assert (grey(gpu, a) - grey(cpu, b)).abs().mean() < 1.0  # nvJPEG vs libjpeg IDCT
