"""The DALI input path: JPEG bytes read at the index's offsets, decoded, augmented and normalised by DALI.

The only module that imports ``nvidia.dali``. A picklable batch source (``shards.dali_source``, which
imports no torch) maps each batch of a virtual stream (the epochs one after another, each padded to whole
batches) to the JPEG bytes of its samples (read at the offsets the index records), their labels, rows and
augmentation parameters (``shards.augment``: the same as the PyTorch path draws). So every sampler is
exact, a run resumes at any step, and ``fn.external_source`` can run in parallel worker processes. On a
GPU the decode is ``mixed`` (nvJPEG) and the augmentation and normalisation run on the GPU; without one
the same graph runs on the CPU (``device_id=None``). Batches leave DALI as the model's input: float,
normalised, channels_last, with 3 channels (grey in each) or 1.
"""
import math

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.plugin.pytorch import feed_ndarray

from .dali_source import PAD_ROW, ShardSource
from .errors import UsageError
from .loader import ShardLoader

# One source worker prepares 18,000-23,000 img/s (batches of 256, with augmentation parameters; measured on
# the 2-core dev VM), so two about match the 35,000 img/s an H200 decodes; each more costs a process.
MAX_SOURCE_WORKERS = 2
SOURCE_PREFETCH = 2  # batches the parallel source computes ahead: DALI's default of 1 keeps one worker busy


@pipeline_def(enable_conditionals=False)
def _graph(source, image_size: int, channels: int, mean_std, on_gpu: bool, parallel: bool, augment: bool,
           resize: bool, multi_label: bool):
    label = types.FLOAT if multi_label else types.INT64  # multi-hot rows, or class indices
    dtypes = [types.UINT8, label, types.INT64] + [types.FLOAT, types.FLOAT] * resize \
        + [types.INT32, types.FLOAT] * augment
    jpg, label, row, *rest = fn.external_source(source, num_outputs=len(dtypes), batch=True, batch_info=True,
                                                parallel=parallel, dtype=dtypes,
                                                prefetch_queue_depth=SOURCE_PREFETCH if parallel else None)
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
    mean, std = mean_std
    img = fn.crop_mirror_normalize(img, mirror=flip, dtype=types.FLOAT, output_layout="HWC",
                                   mean=[255 * m for m in mean], std=[255 * s for s in std])
    return img, label, row


class DaliLoader(ShardLoader):
    """``workers`` (``--workers``, default 4, sized for a 4-vCPU T4 VM) sets DALI's CPU threads (decode on
    the CPU, augmentation, normalisation; at least 1); the training streams read their batches in
    ``min(2, workers)`` spawned source processes (none, in this process, for ``workers=0``). Evaluation
    reads in this process: its pipelines start no worker processes and live only while they are read.
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.on_gpu = self.device.type == "cuda"
        self.pixels = self.ss.manifest["image"]["size"]
        self._train = None  # (pipeline, next epoch, its start step, second stream pipeline)

    def _resizes(self, augment: bool) -> bool:
        return self.augment.image_size != self.pixels or (augment and self.augment.rrc_scale < 1.0)

    def _pipeline(self, source, augment: bool, source_workers: int):
        resize = self._resizes(augment)
        pipe = _graph(source, self.augment.image_size, self.channels, self.mean_std, self.on_gpu, source_workers > 0, augment,
                      resize, self.ss.multi_label, batch_size=self.batch_size, num_threads=max(1, self.workers),
                      device_id=(self.device.index or 0) if self.on_gpu else None, seed=self.seed,
                      py_num_workers=max(1, source_workers), py_start_method="spawn",
                      prefetch_queue_depth=2, exec_dynamic=True)
        pipe.build()
        return pipe

    def _stream(self, sampler: str, epoch: int, start_step: int, stream: int):
        orders = (sampler, self.labels, self.seed, epoch, start_step * self.batch_size, self.rank,
                  self.world_size, stream)
        source = ShardSource(self.ss.files, self.train_rows, self.labels, self.batch_size, self.pixels, self.augment,
                             orders, crop_window=self._resizes(True))
        return self._pipeline(source, True, min(MAX_SOURCE_WORKERS, self.workers))

    def _batch(self, pipe) -> dict:
        try:
            img, label, row = pipe.run()
        except RuntimeError as e:
            if "decoders.image" not in str(e) and "decod" not in str(e).lower():
                raise
            first = next((line for line in str(e).splitlines() if "rror" in line), str(e).splitlines()[0])
            raise UsageError(f"{self.ss.root}: DALI cannot decode an image of its shards ({first.strip()[:160]}); "
                             f"find it with `python -m ingest verify {self.ss.root}` and rebuild what it names with "
                             f"`python -m ingest build-shards`") from None
        rows = np.asarray(row.as_cpu().as_tensor())  # labels and rows never leave the host
        keep = rows != PAD_ROW
        x = self._to_torch(img).permute(0, 3, 1, 2)  # NHWC in memory: channels_last
        if not keep.all():
            x = x[torch.as_tensor(keep, device=x.device)]
        y = torch.as_tensor(np.asarray(label.as_cpu().as_tensor())[keep])
        return {"x": x if self.channels_last else x.contiguous(), "y": y,
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
        rows = self.ss.view(view)
        source = ShardSource(self.ss.files, rows, self.ss.targets(rows), self.batch_size, self.pixels, None,
                             positions=mine, crop_window=self._resizes(False))
        pipe = self._pipeline(source, False, 0)
        for _ in range(math.ceil(len(mine) / self.batch_size)):
            yield self._batch(pipe)
