"""The plain-PyTorch input path over the shards: the fallback where DALI is missing, and the oracle
the DALI path is tested against. Same samplers, augmentation parameters and order as DALI."""
import cv2
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset

from .augment import AugmentParams, AugmentSpec
from .loader import ShardLoader
from .errors import UsageError
from .reader import ShardSet, decode_sample

# OpenCV on one thread: the DataLoader workers are the parallelism (as torch runs one thread in each). Set here,
# in the parent, before any worker is forked: a forked worker that reconfigures the thread pool it inherited
# hangs (OpenCV's pool does not survive a fork).
cv2.setNumThreads(1)


def rotate(img: np.ndarray, angle: float) -> np.ndarray:
    """uint8 (H, W) turned ``angle`` degrees counter-clockwise about its centre, nearest neighbour, black outside:
    torchvision's ``rotate`` (and DALI's) up to the odd pixel whose source coordinate rounds the other way (about
    1 in 100,000), and 17-23x faster than torchvision's on the CPU (docs/benchmarks.md)."""
    h, w = img.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def apply_augment(img: torch.Tensor, spec: AugmentSpec, p: AugmentParams | None) -> torch.Tensor:
    """uint8 (1, H, W) -> uint8 (1, S, S); ``p`` None: eval (resize only)."""
    size = [spec.image_size, spec.image_size]
    h, w = img.shape[-2:]
    if p is not None and p.crop is not None:
        img = TF.resized_crop(img, *p.crop_pixels(h, w), size, antialias=True)
    elif [h, w] != size:
        img = TF.resize(img, size, antialias=True)
    if p is None or not (p.flip or p.angle):
        return img
    a = img[0].numpy()
    if p.flip:
        a = cv2.flip(a, 1)
    if p.angle:
        a = rotate(a, p.angle)
    return torch.from_numpy(a)[None]


class ShardImages(Dataset):
    """item (index row, row in its split, (seed, epoch, stream, position) or None) -> (uint8 image, target, row).

    Over the whole index, so that one DataLoader, and one set of workers, serves every split.
    """

    def __init__(self, ss: ShardSet, spec: AugmentSpec):
        self.files, self.spec = ss.files, spec
        self.rows = ss.index[["shard", "offset", "size", "key"]].to_numpy()
        self.targets = ss.targets(ss.index)

    def __getitem__(self, item):
        index_row, row, seeds = item
        shard, offset, size, key = self.rows[index_row]
        img = torch.from_numpy(decode_sample(self.files, shard, int(offset), int(size), key).copy())[None]
        params = None if seeds is None else self.spec.draw(*seeds)
        return apply_augment(img, self.spec, params), self.targets[index_row], row

    def __len__(self):
        return len(self.rows)


class Batches:
    """The batch sampler of the one DataLoader: each pass yields the batches last set, so the workers
    stay alive between epochs and splits (``persistent_workers``) while every pass has its own order."""

    def __init__(self):
        self.batches = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def collate(items):
    x, y, rows = zip(*items)
    return {"x": torch.stack(x), "y": torch.from_numpy(np.stack(y)), "rows": torch.tensor(rows)}


class TorchLoader(ShardLoader):
    """``workers`` DataLoader worker processes, started at the first pass and kept until the loader goes."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._batches = Batches()
        # a private generator: the DataLoader's seed draws must not move the global RNG the model uses
        self._loader = DataLoader(ShardImages(self.ss, self.augment), batch_sampler=self._batches,
                                  num_workers=self.workers, collate_fn=collate, persistent_workers=self.workers > 0,
                                  pin_memory=self.device.type == "cuda", generator=torch.Generator())
        self._pass = None  # the pass now reading: only one at a time shares the workers

    def _read(self, batches):
        """The batches of [(index row, row in the split, seeds or None), ...] lists, read by the workers."""
        self._batches.batches = batches
        self._pass = token = object()
        try:
            for done, batch in enumerate(self._loader, 1):
                yield batch
                if self._pass is not token:  # checked before the shared workers hand over the other pass's batch
                    if done == len(batches):
                        return
                    raise RuntimeError("TorchLoader: another train()/evaluate() pass started before this one ended")
        except UsageError as e:  # from a worker, its message carries the worker's traceback: the user gets the line
            text = str(e)
            if "Original Traceback" in text:
                raise UsageError(text.rstrip().splitlines()[-1].split("UsageError: ", 1)[-1]) from None
            raise

    def _index_rows(self, view: str):
        """Position in the index of each row of a split."""
        return self.ss.index.index.get_indexer(self.ss.view(view).index)

    def train(self, epoch: int, start_step: int = 0):
        streams = [(self.order(self.sampler, epoch, 0), 0)]
        if self.second_stream:
            streams.append((self.order(self.second_stream, epoch, 1), 1))
        where, n, bs = self._index_rows("train"), len(streams[0][0]), self.batch_size
        batches = [[(where[o[p]], int(o[p]), (self.seed, epoch, s, p)) for o, s in streams
                    for p in range(lo, min(lo + bs, n))] for lo in range(start_step * bs, n, bs)]
        for batch in self._read(batches):
            if self.second_stream:
                k = len(batch["y"]) // 2
                batch = {"x": batch["x"][:k], "y": batch["y"][:k], "rows": batch["rows"][:k],
                         "x2": batch["x"][k:], "y2": batch["y"][k:]}
            yield batch

    def evaluate(self, view: str):
        """This rank's share of the split, each image once, no augmentation; ``rows`` index the split."""
        mine, where = list(self.eval_positions(view)), self._index_rows(view)
        yield from self._read([[(where[i], i, None) for i in mine[lo:lo + self.batch_size]]
                               for lo in range(0, len(mine), self.batch_size)])
