"""python -m train bench: is the GPU (or CPU) fed? Loader-only, model-only and end-to-end images/s.

- loader-only: training batches from the loader, made the model's input on the device;
- model-only: the trainer's own step (``train.loop.step.train_step``) on a batch already on the device;
- end-to-end: the loader feeding that step; saturation = end-to-end / model-only;
- optionally the paper's own input path as a baseline (LongTailCXR's src/datasets.py): read each 1024 px
  PNG with OpenCV as 3 channels, area-resize, flip, rotate, ToTensor, Normalize, every epoch, with the
  same number of workers.

Images are counted as delivered (an epoch's last batch is partial), the device is synchronised before
each clock reading, and ``--repeat R`` measures everything R times: the median is reported with the
spread, every run is kept in the JSON.
"""
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from eval.tasks import task_of
from shards.augment import AugmentSpec
from shards.errors import UsageError
from shards.loader import IMAGENET_MEAN, IMAGENET_STD
from shards.reader import open_shards

from .config import FitConfig
from .context import RunContext
from .device import configure_kernels, resolve_device
from .loop.distributed import World
from .loop.loaders import loader_kind, make_loader
from .loop.state import EpochTotals
from .loop.step import NonFiniteLoss, NonFiniteWatch, StepParts, build_step, train_step
from .methods.losses import make_loss
from .methods.mixing import get_mixing
from .methods.registry import BASELINE, get_method
from .models import build_model

DEFAULTS = {"cuda": (10, 200), "cpu": (3, 20)}  # (warm-up, timed) steps: a GPU needs long windows to be fair
BASELINE_BATCHES = 50  # the paper's path is timed over at least this many batches of distinct PNGs


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batches(loader, steps: int):
    """``steps`` training batches, across epochs as needed."""
    epoch, n = 0, 0
    while True:
        for batch in loader.train(epoch, 0):
            yield batch
            n += 1
            if n == steps:
                return
        epoch += 1


def _timed(fn, steps: int, warmup: int, device) -> tuple[float, int]:
    """(images/s, images) over ``steps`` calls of ``fn`` after ``warmup``; ``fn`` returns the images it handled."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start, images = time.perf_counter(), 0
    for _ in range(steps):
        images += fn()
    _sync(device)
    return images / (time.perf_counter() - start), images


def _non_finite(where, loss):
    raise NonFiniteLoss(f"bench: the loss became {float(loss)}; try --precision bf16 / fp32")


def _step_parts(ctx: RunContext, loader) -> StepParts:
    """The trainer's step as the task's baseline (ce; bce on multi-label shards) training ``cfg.model`` from
    random weights."""
    cfg = ctx.cfg
    model = build_model(cfg.model, ctx.ss.num_classes, "none", channels=cfg.channels).to(ctx.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return build_step(ctx, trained=model, loss_fn=make_loss(ctx.method.loss, ctx.counts).to(ctx.device),
                      mixing=get_mixing("none"), rng=np.random.default_rng(0), to_input=loader.to_input)


def _measure(parts: StepParts, loader, cfg: FitConfig, ss, steps: int, warmup: int) -> dict:
    """One run of the three measurements: {what: (images/s, images timed)}."""
    device, bs = parts.device, cfg.batch_size
    watch = NonFiniteWatch(device, _non_finite)
    fixed = {"x": torch.randint(0, 255, (bs, 1, cfg.image_size, cfg.image_size), dtype=torch.uint8, device=device),
             "y": torch.as_tensor(loader.labels[np.arange(bs) % len(loader.labels)]).to(device)}

    def load(stream) -> int:
        batch = next(stream)
        loader.to_input(batch["x"])
        return len(batch["y"])

    totals = EpochTotals.zero(device)  # what the trainer accumulates; read by nobody here

    def step(batch) -> int:
        train_step(parts, batch, totals, watch)
        return len(batch["y"])

    stream = _batches(loader, steps + warmup)
    out = {"loader": _timed(lambda: load(stream), steps, warmup, device),
           "model": _timed(lambda: step(fixed), steps, warmup, device)}
    stream = _batches(loader, steps + warmup)
    out["end_to_end"] = _timed(lambda: step(next(stream)), steps, warmup, device)
    watch.settle()
    return out


def _summarise(name: str, runs: list[tuple[float, int]]) -> dict:
    rates = [r for r, _ in runs]
    return {f"{name}_img_s": statistics.median(rates), f"{name}_img_s_runs": rates,
            f"{name}_images": runs[0][1]}


def bench(cfg: FitConfig, steps: int | None = None, warmup: int | None = None, baseline_png: str | None = None,
          repeat: int = 1) -> dict:
    ss = open_shards(cfg.shards)
    device = resolve_device(cfg.device)
    configure_kernels(cfg.deterministic)
    default_warmup, default_steps = DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    warmup = default_warmup if warmup is None else warmup
    steps = default_steps if steps is None else steps
    # the baseline first, while no pipeline of ours holds worker processes
    baseline = paper_path(baseline_png, cfg, warmup, repeat, device) if baseline_png else {}
    task = task_of(ss.manifest)
    ctx = RunContext.build(cfg, get_method(BASELINE[task.name]), task, ss, device, World())
    loader = make_loader(ctx)
    parts = _step_parts(ctx, loader)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = [_measure(parts, loader, cfg, ss, steps, warmup) for _ in range(repeat)]
    sizes = ss.index["size"].to_numpy()
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "model": cfg.model, "image_size": cfg.image_size, "channels": cfg.channels, "batch_size": cfg.batch_size,
           "precision": ctx.precision, "channels_last": cfg.channels_last, "compile": cfg.compile,
           "loader": loader_kind(cfg), "workers": cfg.workers, "steps": steps, "warmup": warmup, "repeat": repeat,
           "mean_jpeg_kb": float(sizes.mean() / 1e3)}
    for name in ("loader", "model", "end_to_end"):
        out.update(_summarise(name, [r[name] for r in runs]))
    out["saturation"] = out["end_to_end_img_s"] / out["model_img_s"]
    if device.type == "cuda":
        out["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    if baseline:
        out.update(baseline, loader_vs_paper_path=out["loader_img_s"] / baseline["paper_path_img_s"])
    return out


class PaperPath(Dataset):
    """The paper's input path, as its datasets.py: ``cv2.imread`` (3 channels), ``cv2.resize`` with
    INTER_AREA, then ToPILImage, RandomHorizontalFlip, RandomRotation, ToTensor and ImageNet Normalize."""

    def __init__(self, paths, spec: AugmentSpec):
        self.paths, self.size = paths, spec.image_size
        self.transform = T.Compose([T.ToPILImage(), T.RandomHorizontalFlip(0.5 if spec.hflip else 0.0),
                                    T.RandomRotation(spec.rotation), T.ToTensor(),
                                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        rgb = cv2.resize(cv2.imread(str(self.paths[i])), (self.size, self.size), interpolation=cv2.INTER_AREA)
        return self.transform(rgb)


def opencv_default_threads(worker_id: int):
    """The paper's workers ran OpenCV with its default threads; ours set one (shards.torch_loader). Safe in a
    forked worker because that one thread leaves the parent without an OpenCV pool to inherit."""
    cv2.setNumThreads(-1)


def paper_path(png_dir: str, cfg: FitConfig, warmup: int, repeat: int, device) -> dict:
    """The paper's path with the same workers over BASELINE_BATCHES timed batches of distinct PNGs; its
    batches arrive normalised, so this counts moving them to the device, like ``loader.to_input`` for ours."""
    paths = sorted(Path(png_dir).rglob("*.png"))
    need = (warmup + BASELINE_BATCHES) * cfg.batch_size
    if len(paths) < need:
        raise UsageError(f"--baseline-png {png_dir}: {len(paths)} PNGs; timing the paper's input path over "
                         f"{warmup} warm-up and {BASELINE_BATCHES} timed batches of {cfg.batch_size} needs {need}. "
                         f"Give a dir with more (python -m ingest synth --scale ...), or a smaller --batch-size "
                         f"or --warmup")
    paths = paths[:need]
    for p in paths:  # into the page cache first: time the decoding, not a cold disk (the conservative figure)
        p.read_bytes()
    spec = AugmentSpec(cfg.image_size, cfg.hflip, cfg.rotation)
    loader = DataLoader(PaperPath(paths, spec), batch_size=cfg.batch_size, num_workers=cfg.workers,
                        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
                        worker_init_fn=opencv_default_threads)

    def one_run() -> tuple[float, int]:
        it = iter(loader)
        return _timed(lambda: len(next(it).to(device, non_blocking=True)), BASELINE_BATCHES, warmup, device)

    runs = [one_run() for _ in range(repeat)]
    out = _summarise("paper_path", runs)
    out.update(baseline_png_kb=float(np.mean([p.stat().st_size for p in paths]) / 1e3))
    return out


def _spread(r: dict, name: str) -> str:
    runs = r[f"{name}_img_s_runs"]
    return f"{min(runs):,.1f} - {max(runs):,.1f}" if len(runs) > 1 else "-"


def table(r: dict) -> str:
    rows = [("loader only", "loader"), ("model only (the trainer's step)", "model"),
            ("end to end", "end_to_end")]
    if "paper_path_img_s" in r:
        rows.append(("paper's input path (its datasets.py: cv2, PNG every epoch)", "paper_path"))
    head = (f"{r['device']} | {r['model']} {r['image_size']} px x {r['channels']} channels, "
            f"batch {r['batch_size']}, {r['precision']}, channels_last {r['channels_last']}, "
            f"compile {r['compile']} | {r['loader']} loader with {r['workers']} workers | "
            f"mean JPEG {r['mean_jpeg_kb']:.1f} KB | {r['warmup']} warm-up + {r['steps']} timed steps, "
            f"median of {r['repeat']} run(s)")
    if "peak_gpu_mem_gib" in r:
        head += f" | peak GPU memory {r['peak_gpu_mem_gib']:.1f} GiB"
    lines = [head, "", "| what | images/s | spread (min - max) | images timed |", "|---|---|---|---|"]
    lines += [f"| {label} | {r[f'{k}_img_s']:,.1f} | {_spread(r, k)} | {r[f'{k}_images']:,} |" for label, k in rows]
    lines.append(f"| saturation (end to end / model only) | {100 * r['saturation']:.0f}% | | |")
    if "loader_vs_paper_path" in r:
        lines.append(f"| loader / paper's input path | {r['loader_vs_paper_path']:.1f}x | | |")
    return "\n".join(lines)
