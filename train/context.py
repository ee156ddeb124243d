"""The facts of one run, settled once before it starts and handed down: the method and its stage, the task,
the shards and their class counts, the device, the precision and its autocast, the ranks, the run dir.
Nothing downstream looks the method up again or derives the task a second time."""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from eval.tasks import Task
from shards.errors import UsageError
from shards.reader import ShardSet

from .config import FitConfig
from .device import amp_context
from .loop.distributed import World
from .loop.stages import STAGES, Stage
from .methods.losses import get_loss
from .methods.registry import BASELINE, Method


@dataclass(frozen=True)
class RunContext:
    cfg: FitConfig
    method: Method
    stage: Stage
    task: Task
    ss: ShardSet
    counts: np.ndarray          # training images (single-label) or positives (multi-label) per class
    num_images: int             # training images
    device: torch.device
    precision: str              # fp16 | bf16 | fp32, auto resolved
    amp: Callable               # () -> autocast in that precision (a no-op for fp32)
    world: World
    run: Path

    @classmethod
    def build(cls, cfg: FitConfig, method: Method, task: Task, ss: ShardSet, device: torch.device,
              world: World) -> "RunContext":
        counts = ss.train_counts()
        check_counts(method, task, ss, counts)
        precision, amp = amp_context(cfg, device)
        return cls(cfg, method, STAGES[method.stage], task, ss, counts, len(ss.view("train")), device, precision,
                   amp, world, Path(cfg.out))


def check_counts(method: Method, task: Task, ss: ShardSet, counts: np.ndarray) -> None:
    """A method that weighs classes by their training counts cannot run with a class that has none."""
    empty = [name for name, n in zip(ss.class_names, counts) if n == 0]
    if empty and (method.weighting != "none" or get_loss(method.loss).uses_counts):
        what = "positives" if task.name == "multi-label" else "images"
        raise UsageError(f"--shards {ss.root}: no training {what} of {', '.join(empty)}, and --method "
                         f"{method.name} weighs classes by their training counts; use a method without "
                         f"class weights, margins or priors (such as {BASELINE[task.name]}), or shards "
                         f"whose training split has every class")
