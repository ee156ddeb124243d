"""DALI (CPU-only mode here) against the plain-PyTorch reader: same keys, labels and order; pixels within a
stated tolerance. On a GPU the same checks run with GPU decoding (marked gpu)."""
import gc
import os
from pathlib import Path

import pytest
import torch

from shards.augment import AugmentSpec
from shards.dali import DaliLoader
from shards.dali_probe import descendants
from shards.errors import UsageError
from shards.loader import IMAGENET_MEAN, IMAGENET_STD, normalisation
from shards.reader import open_shards
from shards.samplers import SAMPLERS
from shards.torch_loader import TorchLoader

RESIZE_TOLERANCE = 3  # grey levels: DALI's and torchvision's antialiased bilinear resize differ by rounding


def make(kind, shards_dir, device="cpu", **kw):
    args = dict(sampler="instance", augment=AugmentSpec(32), batch_size=16, seed=3, workers=0,
                device=torch.device(device), channels_last=False)
    return kind(**{"ss": kw.pop("ss", None) or open_shards(shards_dir), **args, **kw})


def pair(shards_dir, device="cpu", **kw):
    return make(DaliLoader, shards_dir, device, **kw), make(TorchLoader, shards_dir, device, **kw)


def cat(batches, key):
    return torch.cat([b[key].cpu() for b in batches])


def grey(loader, batches, key="x"):
    """The model input of every batch, back in grey levels (0-255, float), one channel per image."""
    x = torch.cat([loader.to_input(b[key]).cpu() for b in batches])
    mean, std = normalisation(loader.channels)
    return x[:, 0] * (255 * std[0]) + 255 * mean[0]


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
    gpu, cpu = make(DaliLoader, shards_dir, "cuda"), make(DaliLoader, shards_dir)
    a, b = list(gpu.evaluate("test")), list(cpu.evaluate("test"))
    assert torch.equal(cat(a, "rows"), cat(b, "rows"))
    assert (grey(gpu, a) - grey(cpu, b)).abs().mean() < 1.0  # nvJPEG vs libjpeg IDCT


# DALI's graph on the GPU against the same graph on the CPU, in grey levels: nvJPEG's IDCT and the GPU's float
# rounding move pixels by a few levels (mean below 1); nearest-neighbour rotation may pick the neighbouring
# source pixel where a coordinate rounds apart, which moves a few pixels by a texture step (below 1% of them).
GPU_MEAN_TOLERANCE, GPU_OUTLIER_LEVELS, GPU_OUTLIER_SHARE = 1.0, 8.0, 0.01


@pytest.mark.gpu
@pytest.mark.parametrize("channels", [3, 1])
def test_gpu_training_graph_matches_dali_on_the_cpu(shards_dir, channels):
    """Crop (rrc_scale < 1), resize, rotation, flip and normalisation on the GPU, read by 2 source workers,
    with Balanced-MixUp's second stream, resumed mid-epoch; 3 channels and 1."""
    kw = dict(augment=AugmentSpec(24, rrc_scale=0.6), workers=2, second_stream="class-balanced", channels=channels,
              channels_last=True)
    gpu, cpu = make(DaliLoader, shards_dir, "cuda", **kw), make(DaliLoader, shards_dir, **kw)
    a, b = list(gpu.train(1, 1)), list(cpu.train(1, 1))
    assert len(a) == len(b) == gpu.steps_per_epoch() - 1
    for key in ("rows", "y", "y2"):
        assert torch.equal(cat(a, key), cat(b, key))
    for key in ("x", "x2"):
        assert all(batch[key].is_cuda and batch[key].shape[1:] == (channels, 24, 24) for batch in a)
        diff = (grey(gpu, a, key) - grey(cpu, b, key)).abs()
        assert diff.mean() < GPU_MEAN_TOLERANCE
        assert (diff > GPU_OUTLIER_LEVELS).float().mean() < GPU_OUTLIER_SHARE

def source_workers() -> set[int]:
    """This process's spawned children that are still running (DALI's source workers)."""
    gc.collect()  # pipelines of finished tests close their workers when collected
    return {p for p in descendants(os.getpid()) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}


def test_training_reads_in_two_source_workers_that_load_neither_torch_nor_pandas(shards_dir):
    before = source_workers()
    dali = make(DaliLoader, shards_dir, workers=4)  # the default --workers: 4 DALI threads, 2 source workers
    next(dali.train(0, 0))
    mine = source_workers() - before
    assert len(mine) == 2
    for pid in mine:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in maps and "/pandas/" not in maps and "libdali.so" in maps


def test_evaluation_starts_no_worker_processes(shards_dir):
    dali = make(DaliLoader, shards_dir, workers=2)
    before = source_workers()
    for _ in dali.evaluate("val"):
        assert source_workers() == before


@pytest.mark.parametrize("workers", [0, 2])
def test_a_shard_cut_after_opening_stops_both_loaders_when_they_are_made(shards_copy, workers):
    ss = open_shards(shards_copy)
    os.truncate(shards_copy / "train-000001.tar", 1000)
    for kind in (DaliLoader, TorchLoader):
        with pytest.raises(UsageError, match="train-000001.tar: 1000 bytes, .*`python -m ingest verify"):
            make(kind, shards_copy, ss=ss, workers=workers)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_shard_cut_while_training_stops_both_loaders_with_its_name(shards_copy, workers):
    """No crash without a message: DALI's decoder segfaulted on the short bytes of a truncated tar. Worker
    processes hand the message back inside their traceback."""
    loaders = pair(shards_copy, workers=workers)
    os.truncate(shards_copy / "train-000001.tar", 1000)
    for loader in loaders:
        error = UsageError if workers == 0 else Exception
        with pytest.raises(error, match=r"train-000001.tar: 0 of the \d+ bytes at \d+ read: .*ingest verify"):
            list(loader.train(0, 0))


def test_torch_loader_workers_persist_across_epochs_and_splits_and_keep_the_order(shards_dir):
    _, plain = pair(shards_dir, workers=2, second_stream="class-balanced")
    before = set(descendants(os.getpid()))
    first = cat(list(plain.train(0, 0)), "rows")
    workers = set(descendants(os.getpid())) - before
    assert len(workers) == 2
    evaluated = cat(list(plain.evaluate("val")), "rows")
    resumed = list(plain.train(1, 2))
    assert set(descendants(os.getpid())) - before == workers
    bs = plain.batch_size
    assert torch.equal(first, torch.as_tensor(plain.order("instance", 0, 0)))
    assert torch.equal(evaluated, torch.arange(len(open_shards(shards_dir).view("val"))))
    assert torch.equal(cat(resumed, "rows"), torch.as_tensor(plain.order("instance", 1, 0)[2 * bs:]))
    assert torch.equal(cat(resumed, "y2"), torch.as_tensor(plain.labels[plain.order("class-balanced", 1, 1)[2 * bs:]]))


def test_a_torch_pass_interrupted_by_another_refuses_to_go_on(shards_dir):
    _, plain = pair(shards_dir, workers=2)
    training = plain.train(0, 0)
    next(training)
    assert len(list(plain.evaluate("val"))) > 0
    with pytest.raises(RuntimeError, match="another train\\(\\)/evaluate\\(\\) pass started"):
        next(training)


@pytest.mark.parametrize("sampler", ["instance", "class-balanced"])
def test_multi_label_shards_give_multi_hot_float_targets_equal_to_the_index_in_both_paths(ml_shards_dir, sampler):
    import numpy as np

    ss = open_shards(ml_shards_dir)
    dali, plain = pair(ml_shards_dir, sampler=sampler, ss=ss)
    train = np.stack(ss.view("train")["labels"].to_numpy()).astype(np.float32)
    for batches in (list(dali.train(1, 1)), list(plain.train(1, 1))):
        y, rows = cat(batches, "y"), cat(batches, "rows")
        assert y.dtype == torch.float32 and torch.equal(y, torch.from_numpy(train[rows.numpy()]))
    test = np.stack(ss.view("test")["labels"].to_numpy()).astype(np.float32)
    a, b = list(dali.evaluate("test")), list(plain.evaluate("test"))
    assert torch.equal(cat(a, "y"), torch.from_numpy(test)) and torch.equal(cat(b, "y"), torch.from_numpy(test))
