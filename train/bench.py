"""python -m train bench: is the GPU (or CPU) fed? Loader-only, model-only and end-to-end images/s.

- loader-only: training batches from the loader, normalised on the device;
- model-only: the same train step on a batch already on the device;
- end-to-end: the loader feeding the train step; saturation = end-to-end / model-only;
- optionally the paper's own input path as a baseline: decode each 1024 px PNG,
  resize and augment, every epoch, with the same number of workers.
"""
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from shards.augment import AugmentSpec
from shards.loader import IMAGENET_MEAN, IMAGENET_STD
from shards.reader import open_shards

from .config import FitConfig
from .fit import amp_context, resolve_device
from .loaders import make_loader
from .losses import make_loss
from .methods import get_method
from .models import build_model
from .trainer import optimize


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


def _timed(fn, steps: int, warmup: int, batch_size: int, device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


class PaperPath(Dataset):
    """The paper's own input path (its datasets.py), every epoch in the DataLoader's workers: read the 1024 px
    PNG as 3 channels (``cv2.imread``), area-resize, then flip, rotate, ToTensor and ImageNet Normalize."""

    def __init__(self, paths, spec: AugmentSpec):
        self.paths, self.size = paths, spec.image_size
        self.transform = T.Compose([T.RandomHorizontalFlip(0.5 if spec.hflip else 0.0),
                                    T.RandomRotation(spec.rotation), T.ToTensor(),
                                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:  # BOX is INTER_AREA for the paper's 4x downscale
            rgb = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BOX)
        return self.transform(rgb)


def bench(cfg: FitConfig, steps: int, warmup: int, baseline_png: str | None = None) -> dict:
    ss = open_shards(cfg.shards)
    device = resolve_device(cfg.device)
    precision, amp = amp_context(cfg, device)
    model = build_model(cfg.model, ss.num_classes, "none", channels=cfg.channels).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if cfg.compile else model
    model.train()
    loss_fn = make_loss("ce", ss.train_counts()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    loader = make_loader(cfg, get_method("ce"), ss, device)
    bs = cfg.batch_size
    # the baseline first, while no pipeline of ours holds worker processes
    baseline = _baseline(baseline_png, cfg, steps, warmup, device) if baseline_png else {}
    fixed = torch.randint(0, 255, (bs, 1, cfg.image_size, cfg.image_size), dtype=torch.uint8, device=device)
    fixed_y = torch.randint(0, ss.num_classes, (bs,), device=device)

    def model_step(x=fixed, y=fixed_y):
        optimize(net, loader.to_input(x), y.to(device), loss_fn, opt, scaler, amp)

    stream = _batches(loader, steps + warmup)
    loader_rate = _timed(lambda: loader.to_input(next(stream)["x"]), steps, warmup, bs, device)
    model_rate = _timed(model_step, steps, warmup, bs, device)
    stream = _batches(loader, steps + warmup)

    def e2e():
        b = next(stream)
        model_step(b["x"], b["y"])

    e2e_rate = _timed(e2e, steps, warmup, bs, device)
    sizes = ss.index["size"].to_numpy()
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "model": cfg.model, "image_size": cfg.image_size, "channels": cfg.channels, "batch_size": bs,
           "precision": precision, "channels_last": cfg.channels_last, "compile": cfg.compile,
           "loader": type(loader).__name__,
           "workers": cfg.workers, "mean_jpeg_kb": float(sizes.mean() / 1e3), "loader_img_s": loader_rate,
           "model_img_s": model_rate, "end_to_end_img_s": e2e_rate, "saturation": e2e_rate / model_rate}
    if baseline:
        out.update(baseline, loader_vs_paper_path=loader_rate / baseline["paper_path_img_s"])
    return out


def _baseline(png_dir: str, cfg: FitConfig, steps: int, warmup: int, device) -> dict:
    """The paper's path with the same workers; its batches arrive normalised, so this counts moving them to
    the device, like ``loader.to_input`` for ours."""
    paths = sorted(Path(png_dir).rglob("*.png"))
    if not paths:
        raise FileNotFoundError(f"--baseline-png {png_dir}: no PNG files")
    spec = AugmentSpec(cfg.image_size, cfg.hflip, cfg.rotation)
    n = min(len(paths), (steps + warmup) * cfg.batch_size)
    for p in paths[:n]:  # into the page cache first: time the decoding, not a cold disk (the conservative figure)
        p.read_bytes()
    loader = DataLoader(PaperPath(paths[:n], spec), batch_size=cfg.batch_size, num_workers=cfg.workers,
                        pin_memory=device.type == "cuda")
    it = iter(loader)
    rate = _timed(lambda: next(it).to(device, non_blocking=True), min(steps, math.ceil(n / cfg.batch_size) - warmup),
                  warmup, cfg.batch_size, device)
    return {"paper_path_img_s": rate, "baseline_png_kb": float(np.mean([p.stat().st_size for p in paths[:n]]) / 1e3)}


def table(r: dict) -> str:
    rows = [("loader only", r["loader_img_s"]), ("model only", r["model_img_s"]),
            ("end to end", r["end_to_end_img_s"])]
    if "paper_path_img_s" in r:
        rows.append(("paper's input path (its datasets.py, PNG every epoch)", r["paper_path_img_s"]))
    head = (f"{r['device']} | {r['model']} {r['image_size']} px x {r['channels']} channels, "
            f"batch {r['batch_size']}, {r['precision']}, channels_last {r['channels_last']}, "
            f"compile {r['compile']} | {r['loader']} with {r['workers']} workers | "
            f"mean JPEG {r['mean_jpeg_kb']:.1f} KB")
    lines = [head, "", "| what | images/s |", "|---|---|"] + [f"| {k} | {v:,.1f} |" for k, v in rows]
    lines.append(f"| saturation (end to end / model only) | {100 * r['saturation']:.0f}% |")
    if "loader_vs_paper_path" in r:
        lines.append(f"| loader / paper's input path | {r['loader_vs_paper_path']:.1f}x |")
    return "\n".join(lines)
