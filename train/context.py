"""The facts of one run, settled once before it starts and handed down: the method and its stage, the task,
the shards and their class counts, the device, the precision and its autocast, the ranks, the run dir.
Nothing downstream looks the method up again or derives the task a second time."""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from eval.runs import read_json
from eval.tasks import Task
from shards.errors import UsageError
from shards.reader import ShardSet

from .config import FitConfig
from .device import amp_context
from .loop.distributed import World
from .loop.stages import STAGES, Stage
from .methods.losses import get_loss
from .methods.registry import BASELINE, Method
from .models import input_spec
from .weights import read_state


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
    input: dict                 # the model's input: scaling, mean, std, input_size, interpolation (models.input_spec)

    @classmethod
    def build(cls, cfg: FitConfig, method: Method, task: Task, ss: ShardSet, device: torch.device,
              world: World) -> "RunContext":
        counts = ss.train_counts()
        check_counts(method, task, ss, counts)
        precision, amp = amp_context(cfg, device)
        stage = STAGES[method.stage]
        return cls(cfg, method, stage, task, ss, counts, len(ss.view("train")), device, precision,
                   amp, world, Path(cfg.out), run_input(cfg, stage))

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return tuple(self.input["mean"]), tuple(self.input["std"])


def run_input(cfg: FitConfig, stage: Stage) -> dict:
    """The run's input spec: a stage-1 run's when this run keeps its backbone, else the backbone's with
    torchxrayvision's scaling when asked or when the --pretrained file is torchxrayvision's (its op_threshs)."""
    stage1 = Path(cfg.init_from) / "config.json"
    if stage.from_stage1 and stage1.is_file():  # (a missing one: the stage's build names the fix)
        meta = read_json(stage1)
        return meta.get("input") or input_spec(meta["config"]["model"], meta["config"].get("channels", 3))
    scaling = cfg.input_scaling
    if scaling == "auto" and cfg.pretrained not in ("none", "", "imagenet") and "op_threshs" in read_state(
            cfg.pretrained):
        scaling = "xrv"
    return input_spec(cfg.model, cfg.channels, scaling)


def check_counts(method: Method, task: Task, ss: ShardSet, counts: np.ndarray) -> None:
    """A method that weighs classes by their training counts cannot run with a class that has none."""
    empty = [name for name, n in zip(ss.class_names, counts) if n == 0]
    if empty and (method.weighting != "none" or get_loss(method.loss).uses_counts):
        what = "positives" if task.name == "multi-label" else "images"
        raise UsageError(f"--shards {ss.root}: no training {what} of {', '.join(empty)}, and --method "
                         f"{method.name} weighs classes by their training counts; use a method without "
                         f"class weights, margins or priors (such as {BASELINE[task.name]}), or shards "
                         f"whose training split has every class")
