"""The plain-PyTorch input path over the shards: the fallback where DALI is missing, and the oracle
the DALI path is tested against. Same samplers, augmentation parameters and order as DALI."""
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset

from .augment import AugmentParams, AugmentSpec
from .loader import ShardLoader
from .reader import ShardSet, decode


def apply_augment(img: torch.Tensor, spec: AugmentSpec, p: AugmentParams | None) -> torch.Tensor:
    """uint8 (1, H, W) -> uint8 (1, S, S); ``p`` None: eval (resize only)."""
    size = [spec.image_size, spec.image_size]
    h, w = img.shape[-2:]
    if p is not None and p.crop is not None:
        img = TF.resized_crop(img, *p.crop_pixels(h, w), size, antialias=True)
    elif [h, w] != size:
        img = TF.resize(img, size, antialias=True)
    if p is None:
        return img
    if p.flip:
        img = TF.horizontal_flip(img)
    if p.angle:
        img = TF.rotate(img, p.angle, interpolation=TF.InterpolationMode.NEAREST)
    return img


class ShardImages(Dataset):
    """item (row, (seed, epoch, stream, position) or None) -> (uint8 image, label, row)."""

    def __init__(self, ss: ShardSet, rows, spec: AugmentSpec):
        self.ss, self.spec = ss, spec
        self.rows = rows[["shard", "offset", "size", "label"]].to_numpy()

    def __getitem__(self, item):
        row, seeds = item
        shard, offset, size, label = self.rows[row]
        img = torch.from_numpy(decode(self.ss.read_bytes(shard, int(offset), int(size))).copy())[None]
        params = None if seeds is None else self.spec.draw(*seeds)
        return apply_augment(img, self.spec, params), int(label), row

    def __len__(self):
        return len(self.rows)


def collate(items):
    x, y, rows = zip(*items)
    return {"x": torch.stack(x), "y": torch.tensor(y), "rows": torch.tensor(rows)}


class TorchLoader(ShardLoader):
    def _loader(self, dataset, batches):
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.workers, collate_fn=collate,
                          pin_memory=self.device.type == "cuda")

    def train(self, epoch: int, start_step: int = 0):
        streams = [(self.order(self.sampler, epoch, 0), 0)]
        if self.second_stream:
            streams.append((self.order(self.second_stream, epoch, 1), 1))
        n, bs = len(streams[0][0]), self.batch_size
        batches = [[(int(o[p]), (self.seed, epoch, s, p)) for o, s in streams for p in range(lo, min(lo + bs, n))]
                   for lo in range(start_step * bs, n, bs)]
        for batch in self._loader(ShardImages(self.ss, self.train_rows, self.augment), batches):
            if self.second_stream:
                k = len(batch["y"]) // 2
                batch = {"x": batch["x"][:k], "y": batch["y"][:k], "rows": batch["rows"][:k],
                         "x2": batch["x"][k:], "y2": batch["y"][k:]}
            yield batch

    def evaluate(self, view: str):
        """This rank's share of the split, each image once, no augmentation; ``rows`` index the split."""
        mine = list(self.eval_positions(view))
        batches = [[(i, None) for i in mine[lo:lo + self.batch_size]] for lo in range(0, len(mine), self.batch_size)]
        yield from self._loader(ShardImages(self.ss, self.ss.view(view), self.augment), batches)
