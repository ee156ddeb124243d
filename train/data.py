"""The plain-PyTorch input path over the shards (the fallback where DALI is missing).

Every training sample is (row, position in the epoch's order); its augmentation
is drawn from a generator seeded with (seed, epoch, stream, position), so the
batches depend on neither the worker count nor where a run was resumed. Images
travel as uint8 and are normalised on the device (``to_input``).
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset

from shards.reader import ShardSet, decode
from shards.samplers import sample_order

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Augment:
    image_size: int
    hflip: bool = True
    rotation: float = 15.0
    rrc_scale: float = 1.0

    def __call__(self, img: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """uint8 (1, H, W) -> uint8 (1, S, S); ``gen`` None: eval (resize only)."""
        size = [self.image_size, self.image_size]
        if gen is not None and self.rrc_scale < 1.0:
            img = TF.resized_crop(img, *self._crop(img.shape[-2:], gen), size, antialias=True)
        elif list(img.shape[-2:]) != size:
            img = TF.resize(img, size, antialias=True)
        if gen is None:
            return img
        u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        if self.hflip and u[0] < 0.5:
            img = TF.horizontal_flip(img)
        if self.rotation > 0:
            img = TF.rotate(img, (2 * u[1] - 1) * self.rotation, interpolation=TF.InterpolationMode.BILINEAR)
        return img

    def _crop(self, hw, gen):
        h, w = hw
        u = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
        area = h * w * (self.rrc_scale + (1 - self.rrc_scale) * u[0])
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        ch = min(h, int(round(math.sqrt(area / ratio))))
        cw = min(w, int(round(math.sqrt(area * ratio))))
        return int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1)), ch, cw


def sample_generator(seed: int, epoch: int, stream: int, position: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch, stream, position]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class ShardImages(Dataset):
    """item (row, seed tuple or None) -> (uint8 image, label, row)."""

    def __init__(self, ss: ShardSet, rows, augment: Augment):
        self.ss, self.augment = ss, augment
        self.rows = rows[["shard", "offset", "size", "label"]].to_numpy()

    def __getitem__(self, item):
        row, seeds = item
        shard, offset, size, label = self.rows[row]
        img = torch.from_numpy(decode(self.ss.read_bytes(shard, int(offset), int(size))).copy())[None]
        gen = None if seeds is None else sample_generator(*seeds)
        return self.augment(img, gen), int(label), row

    def __len__(self):
        return len(self.rows)


def collate(items):
    x, y, rows = zip(*items)
    return {"x": torch.stack(x), "y": torch.tensor(y), "rows": torch.tensor(rows)}


class TorchLoader:
    """Train batches in the sampler's order for (seed, epoch), from any step; eval batches in index order."""

    def __init__(self, ss: ShardSet, sampler: str, augment: Augment, batch_size: int, seed: int, workers: int,
                 device: torch.device, channels_last: bool, second_stream: str | None = None,
                 rank: int = 0, world_size: int = 1):
        self.ss, self.sampler, self.augment = ss, sampler, augment
        self.batch_size, self.seed, self.workers, self.device = batch_size, seed, workers, device
        self.channels_last, self.second_stream = channels_last, second_stream
        self.rank, self.world_size = rank, world_size
        self.train_rows = ss.view("train")
        self.labels = self.train_rows["label"].to_numpy()
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
        self.mean, self.std = mean, std

    def _order(self, sampler, epoch, stream):
        return sample_order(sampler, self.labels, self.seed, epoch, rank=self.rank,
                            world_size=self.world_size, stream=stream)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self._order("instance", 0, 0)) / self.batch_size)

    def _loader(self, dataset, batches):
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.workers, collate_fn=collate,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def train(self, epoch: int, start_step: int = 0):
        order = self._order(self.sampler, epoch, 0)
        streams = [(order, 0)]
        if self.second_stream:
            streams.append((self._order(self.second_stream, epoch, 1), 1))
        batches = []
        for step in range(start_step, math.ceil(len(order) / self.batch_size)):
            lo, hi = step * self.batch_size, min((step + 1) * self.batch_size, len(order))
            batches.append([(int(o[p]), (self.seed, epoch, s, p)) for o, s in streams for p in range(lo, hi)])
        dataset = ShardImages(self.ss, self.train_rows, self.augment)
        for batch in self._loader(dataset, batches):
            yield self._split(batch)

    def _split(self, batch):
        if not self.second_stream:
            return batch
        n = len(batch["y"]) // 2
        return {"x": batch["x"][:n], "y": batch["y"][:n], "rows": batch["rows"][:n],
                "x2": batch["x"][n:], "y2": batch["y"][n:]}

    def evaluate(self, view: str):
        rows = self.ss.view(view)
        batches = [[(i, None) for i in range(lo, min(lo + self.batch_size, len(rows)))]
                   for lo in range(0, len(rows), self.batch_size)]
        yield from self._loader(ShardImages(self.ss, rows, self.augment), batches)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1, H, W) -> normalised float (N, 3, H, W) on the device, channels_last if asked."""
        x = x.to(self.device, non_blocking=True).expand(-1, 3, -1, -1).float()
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()
