"""A finished run as a usable model: ``load_model(run_dir)`` (also ``from train import load_model``).

The architecture comes from the run's config.json (for cRT and tau-norm, the
backbone is the stage-1 run's: its config.json when reachable), the weights
from best.pt: the model the run evaluated, backbone included for cRT, the
tau-normalised classifier for tau-norm. The preprocessing needs how the shards
were packed (size, format, quality): the shards dir's manifest.json, found
where config.json says, or given as ``shards``.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from eval.runs import read_json
from eval.tasks import TASKS
from shards.errors import UsageError
from shards.manifest import check_image_settings, read_manifest

from ..config import check_saved_config
from ..loop.stages import STAGES, stage1_architecture
from ..methods.registry import get_method, head_scale
from ..models import build_model
from ..rundir.checkpoint import load_checkpoint
from .preprocess import Preprocess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scores:
    """A batch's outputs: ``probabilities`` and ``logits`` (N, classes), columns in ``class_names`` order."""
    class_names: list[str]
    probabilities: np.ndarray
    logits: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The probabilities as a table, one column per class."""
        return pd.DataFrame(self.probabilities, columns=self.class_names)

    def top(self) -> list[str]:
        """Each image's most probable class."""
        return [self.class_names[k] for k in self.probabilities.argmax(1)]


@dataclass(frozen=True)
class TrainedModel:
    """``model`` (eval mode) takes ``preprocess(image)`` batches and returns logits; the task's scores (softmax;
    a sigmoid per class for multi-label) give probabilities. ``tm(images)`` or ``tm.predict(images)`` does it all:
    images (paths, PIL images or arrays) -> ``Scores``."""
    model: nn.Module
    preprocess: Preprocess
    class_names: list[str]
    method: str
    task: str                                        # single-label | multi-label
    groups: list[str] = field(default_factory=list)
    tau: float | None = None
    architecture: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)   # git commit, index hash, dataset, synthetic, precision
    thresholds: list[float] | None = None  # multi-label: each class's F1 threshold, tuned on val by the run

    def predict(self, images, batch_size: int = 64, workers: int = 0) -> Scores:
        """``images``: one image or a list (file paths, PIL images, uint8 / uint16 arrays), preprocessed as
        ``train predict`` does, in batches of ``batch_size`` on the model's device."""
        from .predict import predict_logits  # predict.py builds on this module

        items = list(images) if isinstance(images, (list, tuple)) else [images]
        logits, _, _ = predict_logits(self, items, batch_size, workers)
        return Scores(self.class_names, TASKS[self.task].scores(logits), logits)

    def __call__(self, images, batch_size: int = 64) -> Scores:
        return self.predict(images, batch_size)

    def metadata(self) -> dict:
        """What an exported model needs beside its weights (JSON-serialisable)."""
        mean, std = self.preprocess.mean_std
        p = self.preprocess
        scores = "a sigmoid per class" if self.task == "multi-label" else "softmax"
        return {"class_names": self.class_names, "groups": self.groups, "method": self.method, "task": self.task,
                "tau": self.tau, "architecture": self.architecture, "image_size": p.image_size, "channels": p.channels,
                "mean": list(mean), "std": list(std), "input": "float32 (N, channels, image_size, image_size): the "
                f"steps of preprocessing (preprocess.py does them); output: logits ({scores}: probabilities)",
                "preprocessing": p.recipe(),
                "shards_image": {"size": p.shard_size, "format": p.shard_format, "quality": p.shard_quality,
                                 **({"window16": p.window16} if p.window16 != "sbit" else {})},
                "thresholds": self.thresholds,
                **self.provenance}


def read_run(run: Path) -> dict:
    run = Path(run)
    path = run / "config.json"
    if not path.is_file():
        raise UsageError(f"{run}: no config.json, so not a run dir; give the --out of a `python -m train fit`")
    if not (run / "best.pt").is_file():
        raise UsageError(f"{run}: no best.pt, so no model to use; finish the run first (rerun its fit command; "
                         f"a tau-norm run made before tau-norm saved its weights: rerun it with --resume never)")
    meta = read_json(path)
    check_saved_config(path, meta)
    return meta


def architecture(meta: dict) -> dict:
    """{model, head, channels} of the network in best.pt: the stage's saved head; a stage that starts from a
    stage-1 run keeps that run's backbone whatever --model said."""
    cfg = meta["config"]
    method = get_method(cfg["method"])
    stage = STAGES[method.stage]
    model = stage1_architecture(cfg) if stage.from_stage1 else cfg["model"]
    scale = head_scale(method, cfg) if stage.saved_head(method, cfg) == "normed" else None
    return {"model": model, "head": stage.saved_head(method, cfg), "channels": cfg.get("channels", 3),
            **({"head_scale": scale} if scale is not None else {}),
            "input_scaling": (meta.get("input") or {}).get("scaling", "imagenet")}


def shards_image(meta: dict, shards: str | Path | None, run: Path) -> dict:
    """How the run's shards were packed: {size, format, quality}."""
    if "shards_image" in meta:
        check_image_settings(meta["shards_image"], Path(run) / "config.json",
                             "the file was altered or is damaged; rerun the run's fit command into a new --out")
        return meta["shards_image"]
    root = Path(shards or meta["config"]["shards"])
    if not (root / "manifest.json").is_file():
        raise UsageError(f"{root}: no manifest.json; the run's preprocessing needs how its shards were packed. "
                         f"Pass the shards dir the run was trained on (--shards DIR; a folder holding a copy of "
                         f"its manifest.json is enough)")
    manifest = read_manifest(root)
    if manifest.get("index_sha256", meta["index_sha256"]) != meta["index_sha256"]:
        log.warning("%s is not the shards build this run was trained on (index hash differs); using its image "
                    "settings %s", root, manifest["image"])
    return manifest["image"]


def load_model(run: str | Path, device: str | torch.device = "cpu", shards: str | Path | None = None) -> TrainedModel:
    run = Path(run)
    meta = read_run(run)
    cfg, arch = meta["config"], architecture(meta)
    image = shards_image(meta, shards, run)
    model = build_model(arch["model"], len(meta["class_names"]), "none", arch["head"], arch["channels"],
                        head_scale=arch.get("head_scale"))
    ckpt = load_checkpoint(run / "best.pt")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise UsageError(f"{run / 'best.pt'} does not fit a {arch['model']} with a {arch['head']} head (for cRT or "
                         f"tau-norm the stage-1 run {cfg.get('init_from')!r} tells the backbone; make it reachable "
                         f"there): {str(e).splitlines()[0]}") from e
    spec = meta.get("input") or {}  # runs made before timm backbones: ImageNet's
    prep = Preprocess(image["size"], image["format"], image.get("quality", 95), cfg["image_size"], arch["channels"],
                      window16=image.get("window16", "sbit"),  # shards made before the field used sbit
                      mean=tuple(spec["mean"]) if spec else None, std=tuple(spec["std"]) if spec else None)
    provenance = {k: meta.get(k) for k in ("git_commit", "index_sha256", "dataset", "synthetic", "precision")}
    task = meta.get("method", {}).get("task", "single-label")  # runs made before multi-label were single-label
    return TrainedModel(model.to(device).eval(), prep, meta["class_names"], cfg["method"], task,
                        meta.get("groups", []), ckpt.get("tau"), arch, provenance,
                        tuned_thresholds(run, meta["class_names"]))


def tuned_thresholds(run: Path, class_names: list[str]) -> list[float] | None:
    """The per-class thresholds a finished multi-label run tuned on val (its summary.json), else None."""
    path = run / "summary.json"
    per_class = read_json(path).get("per_class", {}) if path.is_file() else {}
    if not all(isinstance(per_class.get(c), dict) and "threshold" in per_class[c] for c in class_names):
        return None
    for c in class_names:
        t = per_class[c]["threshold"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
            raise UsageError(f"{path}: class {c!r} has threshold {t!r}, not a probability strictly between 0 and 1; "
                             f"the file was altered or is damaged: rerun the run's fit command into a new --out, or "
                             f"give --threshold 0.5")
    return [float(per_class[c]["threshold"]) for c in class_names]
