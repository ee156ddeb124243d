"""The batch source of the DALI input path: one batch of JPEG bytes, labels, rows and augmentation
parameters for each batch DALI asks for.

Imports neither torch, pandas nor DALI's PyTorch plugin: DALI's parallel ``external_source`` runs it in
spawned worker processes, which import this module to unpickle it, and each heavy import would cost every
worker hundreds of MB and seconds of start-up. ``tests/shards/test_dali_loader.py`` checks the workers for it.
(Spawned workers also import the main module of a script run as ``python file.py``; the commands run as
``python -m ...``, whose ``__main__`` modules are not imported again.)
"""
import math
import multiprocessing
import os
import threading
import time

import numpy as np

from .augment import AugmentSpec
from .samplers import sample_order
from .tars import ShardFiles

PAD_ROW = -1  # padding samples that fill the last batch of an epoch; dropped before the trainer sees them
_watching = False


def exit_with_parent(poll_s: float = 1.0) -> None:
    """In a worker process: exit as soon as the process that started it is gone. A ``kill -9`` of fit would
    otherwise leave its DALI workers running, and with them Python's resource tracker, whose pipe they hold.
    (A parent-pid check, not PR_SET_PDEATHSIG: that fires when the starting *thread* ends, not the process.)"""
    global _watching
    if _watching or multiprocessing.parent_process() is None:  # the main process is no one's worker
        return
    _watching = True
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ShardSource:
    """BatchInfo -> the batch's (jpeg bytes, targets, rows[, crop window starts, ends][, flips, angles]).

    The stream is virtual: the epochs one after another, each padded to whole batches, so a pipeline
    serves every epoch from any start step. ``rows`` is a DataFrame of the split (read here, in the main
    process, and kept as numpy arrays only).
    """

    def __init__(self, files: ShardFiles, rows, targets: np.ndarray, batch_size: int, pixels: int,
                 spec: AugmentSpec | None, orders=None, positions=None, crop_window: bool = True):
        self.files, self.spec, self.batch_size, self.pixels = files, spec, batch_size, pixels
        self.crop_window = crop_window  # emit the crop window (only when the graph resizes)
        # eval: the positions (in ``rows``) this rank reads, in order
        self.positions = np.arange(len(rows)) if positions is None else np.asarray(positions)
        self.shards = rows["shard"].to_numpy(object)
        self.offsets, self.sizes = rows["offset"].to_numpy(np.int64), rows["size"].to_numpy(np.int64)
        self.labels = targets  # of ``rows``: class indices, or multi-hot float rows (``ShardSet.targets``)
        self.orders = orders  # (sampler, labels, seed, first_epoch, start_position, rank, world, stream) or None
        self._cached = (None, None)

    def __getstate__(self):
        return {**self.__dict__, "_cached": (None, None)}

    def __setstate__(self, state):  # in a DALI worker process, which unpickles its source
        self.__dict__.update(state)
        exit_with_parent()

    def _epoch_len(self) -> tuple[int, int]:
        """(length padded to whole batches, real length) of one epoch of the stream."""
        n = len(self.positions) if self.orders is None else math.ceil(len(self.orders[1]) / self.orders[6])
        return math.ceil(n / self.batch_size) * self.batch_size, n

    def _locate(self, i: int):
        """Stream index -> (epoch, position in the epoch or None for padding, row)."""
        padded, n = self._epoch_len()
        if self.orders is None:  # eval: this rank's positions in index order, again and again
            pos = i % padded
            return 0, (pos if pos < n else None), (int(self.positions[pos]) if pos < n else PAD_ROW)
        sampler, labels, seed, first, start, rank, world, stream = self.orders
        first_len = padded - start
        epoch, pos = (first, start + i) if i < first_len else (first + 1 + (i - first_len) // padded,
                                                               (i - first_len) % padded)
        if pos >= n:
            return epoch, None, PAD_ROW
        if self._cached[0] != epoch:
            self._cached = (epoch, sample_order(sampler, labels, seed, epoch, rank=rank, world_size=world,
                                                stream=stream))
        return epoch, pos, int(self._cached[1][pos])

    def _sample(self, i: int) -> tuple:
        epoch, pos, row = self._locate(i)
        data_row = row if row != PAD_ROW else 0
        data = self.files.read_bytes(self.shards[data_row], int(self.offsets[data_row]), int(self.sizes[data_row]))
        flip, angle, crop = False, 0.0, (0, 0, self.pixels, self.pixels)
        if self.spec is not None and pos is not None:
            p = self.spec.draw(self.orders[2], epoch, self.orders[7], pos)
            # the graph mirrors after rotating: flip-then-rotate(a) is rotate(-a)-then-flip
            flip, angle, crop = p.flip, -p.angle if p.flip else p.angle, p.crop_pixels(self.pixels, self.pixels)
        top, left, h, w = crop  # on the pixel grid, as the PyTorch path crops
        return np.frombuffer(data, np.uint8), self.labels[data_row], row, (top, left), (top + h, left + w), flip, angle

    def __call__(self, info):
        jpg, label, row, start, end, flip, angle = zip(*(self._sample(info.iteration * self.batch_size + j)
                                                         for j in range(self.batch_size)))
        out = (list(jpg), np.stack(label), np.array(row, np.int64))
        if self.crop_window:
            out += (np.array(start, np.float32), np.array(end, np.float32))
        return out if self.spec is None else out + (np.array(flip, np.int32), np.array(angle, np.float32))
