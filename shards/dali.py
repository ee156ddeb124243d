"""The DALI input path: JPEG bytes read at the index's offsets, decoded, augmented and normalised by DALI.

The only module that imports ``nvidia.dali``. A picklable batch source maps
each batch of a virtual stream (the epochs one after another, each padded to
whole batches) to the JPEG bytes of its samples (read via mmap at the offsets
the index records), their labels, rows and augmentation parameters
(``shards.augment``: the same as the PyTorch path draws). So every sampler is
exact, a run resumes at any step, and ``fn.external_source`` can run in
parallel worker processes. On a GPU the decode is ``mixed`` (nvJPEG) and the
augmentation and normalisation run on the GPU; without one the same graph runs
on the CPU (``device_id=None``). Batches leave DALI as the model's input:
float, normalised, channels_last, with 3 channels (grey in each) or 1.
"""
import math

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.plugin.pytorch import feed_ndarray

from .augment import AugmentSpec
from .loader import ShardLoader, normalisation
from .reader import ShardSet
from .samplers import sample_order

PAD_ROW = -1  # padding samples that fill the last batch of an epoch; dropped before the trainer sees them


class ShardSource:
    """BatchInfo -> the batch's (jpeg bytes, labels, rows[, crop window starts, ends][, flips, angles])."""

    def __init__(self, ss: ShardSet, rows, batch_size: int, pixels: int, spec: AugmentSpec | None, orders=None,
                 positions=None, crop_window: bool = True):
        self.ss, self.spec, self.batch_size, self.pixels = ss, spec, batch_size, pixels
        self.crop_window = crop_window  # emit the crop window (only when the graph resizes)
        # eval: the positions (in ``rows``) this rank reads, in order
        self.positions = np.arange(len(rows)) if positions is None else np.asarray(positions)
        self.where = rows[["shard", "offset", "size"]].to_numpy()
        self.labels = rows["label"].to_numpy().astype(np.int64)
        self.orders = orders  # (sampler, labels, seed, first_epoch, start_position, rank, world, stream) or None
        self._cached = (None, None)

    def __getstate__(self):
        return {**self.__dict__, "_cached": (None, None)}

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
        shard, offset, size = self.where[data_row]
        jpg = np.frombuffer(self.ss.read_bytes(shard, int(offset), int(size)), dtype=np.uint8)
        flip, angle, crop = False, 0.0, (0, 0, self.pixels, self.pixels)
        if self.spec is not None and pos is not None:
            p = self.spec.draw(self.orders[2], epoch, self.orders[7], pos)
            # the graph mirrors after rotating: flip-then-rotate(a) is rotate(-a)-then-flip
            flip, angle, crop = p.flip, -p.angle if p.flip else p.angle, p.crop_pixels(self.pixels, self.pixels)
        top, left, h, w = crop  # on the pixel grid, as the PyTorch path crops
        return jpg, self.labels[data_row], row, (top, left), (top + h, left + w), flip, angle

    def __call__(self, info):
        jpg, label, row, start, end, flip, angle = zip(*(self._sample(info.iteration * self.batch_size + j)
                                                         for j in range(self.batch_size)))
        out = (list(jpg), np.array(label, np.int64), np.array(row, np.int64))
        if self.crop_window:
            out += (np.array(start, np.float32), np.array(end, np.float32))
        return out if self.spec is None else out + (np.array(flip, np.int32), np.array(angle, np.float32))


@pipeline_def(enable_conditionals=False)
def _graph(source, image_size: int, channels: int, on_gpu: bool, parallel: bool, augment: bool, resize: bool):
    dtypes = [types.UINT8, types.INT64, types.INT64] + [types.FLOAT, types.FLOAT] * resize \
        + [types.INT32, types.FLOAT] * augment
    jpg, label, row, *rest = fn.external_source(source, num_outputs=len(dtypes), batch=True, batch_info=True,
                                                parallel=parallel, dtype=dtypes)
    img = fn.decoders.image(jpg, device="mixed" if on_gpu else "cpu", output_type=types.GRAY)
    if resize:  # a crop, or a size other than the shards': otherwise the decoded image is already right
        roi_start, roi_end, *rest = rest
        img = fn.resize(img, resize_x=image_size, resize_y=image_size, roi_start=roi_start, roi_end=roi_end,
                        antialias=True, interp_type=types.INTERP_LINEAR)
    flip = 0
    if augment:
        flip, angle = rest
        img = fn.rotate(img, angle=angle, keep_size=True, fill_value=0, interp_type=types.INTERP_NN)
    if channels == 3:
        img = fn.color_space_conversion(img, image_type=types.GRAY, output_type=types.RGB)
    mean, std = normalisation(channels)
    img = fn.crop_mirror_normalize(img, mirror=flip, dtype=types.FLOAT, output_layout="HWC",
                                   mean=[255 * m for m in mean], std=[255 * s for s in std])
    return img, label, row


class DaliLoader(ShardLoader):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.on_gpu = self.device.type == "cuda"
        self.pixels = self.ss.manifest["image"]["size"]
        self._train = None  # (pipeline, next epoch, its start step, second stream pipeline)
        self._eval = {}

    def _resizes(self, augment: bool) -> bool:
        return self.augment.image_size != self.pixels or (augment and self.augment.rrc_scale < 1.0)

    def _pipeline(self, source, augment: bool):
        parallel = self.workers > 0
        resize = self._resizes(augment)
        pipe = _graph(source, self.augment.image_size, self.channels, self.on_gpu, parallel, augment, resize,
                      batch_size=self.batch_size, num_threads=max(1, min(self.workers, 4)),
                      device_id=(self.device.index or 0) if self.on_gpu else None, seed=self.seed,
                      py_num_workers=max(1, self.workers), py_start_method="spawn",
                      prefetch_queue_depth=2, exec_dynamic=True)
        pipe.build()
        return pipe

    def _stream(self, sampler: str, epoch: int, start_step: int, stream: int):
        orders = (sampler, self.labels, self.seed, epoch, start_step * self.batch_size, self.rank,
                  self.world_size, stream)
        source = ShardSource(self.ss, self.train_rows, self.batch_size, self.pixels, self.augment, orders,
                             crop_window=self._resizes(True))
        return self._pipeline(source, True)

    def _batch(self, pipe) -> dict:
        img, label, row = pipe.run()
        rows = np.asarray(row.as_cpu().as_tensor())  # labels and rows never leave the host
        keep = rows != PAD_ROW
        x = self._to_torch(img).permute(0, 3, 1, 2)  # NHWC in memory: channels_last
        if not keep.all():
            x = x[torch.as_tensor(keep, device=x.device)]
        y = torch.as_tensor(np.asarray(label.as_cpu().as_tensor())[keep])
        return {"x": x if self.channels_last else x.contiguous(), "y": y.long(),
                "rows": torch.as_tensor(rows[keep]).long()}

    def _to_torch(self, tl) -> torch.Tensor:
        """DALI's batch as a tensor: shared on the CPU (no copy: with ``exec_dynamic`` DALI never reuses an
        output it has handed out), copied into a new tensor on the GPU."""
        dense = tl.as_tensor()
        if not self.on_gpu:
            return torch.from_numpy(np.asarray(dense))
        out = torch.empty(dense.shape(), dtype=torch.float32, device=self.device)
        feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(self.device))
        return out

    def train(self, epoch: int, start_step: int = 0):
        if self._train is None or self._train[1:3] != (epoch, start_step):
            second = self._stream(self.second_stream, epoch, start_step, 1) if self.second_stream else None
            self._train = (self._stream(self.sampler, epoch, start_step, 0), epoch, start_step, second)
        pipe, _, _, second = self._train
        for _ in range(start_step, self.steps_per_epoch()):
            batch = self._batch(pipe)
            if second is not None:
                other = self._batch(second)
                batch.update(x2=other["x"], y2=other["y"])
            yield batch
        self._train = (pipe, epoch + 1, 0, second)

    def evaluate(self, view: str):
        """This rank's share of the split, each image once, no augmentation; ``rows`` index the split."""
        mine = self.eval_positions(view)
        if view not in self._eval:
            source = ShardSource(self.ss, self.ss.view(view), self.batch_size, self.pixels, None,
                                 positions=mine, crop_window=self._resizes(False))
            self._eval[view] = self._pipeline(source, False)
        for _ in range(math.ceil(len(mine) / self.batch_size)):
            yield self._batch(self._eval[view])
