"""Two-stage methods: the stage-1 model a run starts from, cRT's frozen backbone, tau-norm's sweep.

Decoupling (Kang et al., arXiv 1910.09217): cRT re-trains a freshly initialised
classifier with class-balanced sampling on the frozen stage-1 backbone (its
BatchNorm statistics frozen too); tau-norm rescales the stage-1 classifier
without training, tau chosen on balanced-val.
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eval.runs import read_json
from eval.tasks import task_of
from shards.errors import UsageError
from shards.reader import ShardSet

from .checkpoint import load_checkpoint
from .config import FitConfig
from .inference import infer
from .methods import BASELINE, Method, get_method
from .models import Classifier, build_model, make_head


def head_kind(method: Method, cfg_paper_ldam: bool) -> str:
    return "linear" if cfg_paper_ldam else method.head


def stage1_model(init_from: str, ss: ShardSet) -> tuple[Classifier, dict]:
    run = Path(init_from)
    if not (run / "best.pt").exists():
        method = BASELINE[task_of(ss.manifest).name]
        raise UsageError(f"--init-from {run}: no best.pt; train the stage-1 run first (for example "
                         f"`python -m train fit --method {method} --out {run} ...`)")
    cfg1 = read_json(run / "config.json")["config"]
    method1 = get_method(cfg1["method"])
    task = task_of(ss.manifest).name
    if method1.stage != "train" or method1.task != task:
        raise UsageError(f"--init-from {run} is a {method1.name} run; start from a stage-1 {task} run such as "
                         f"{BASELINE[task]}")
    model = build_model(cfg1["model"], ss.num_classes, "none", head_kind(method1, cfg1["paper_ldam"]),
                        cfg1.get("channels", 3))
    model.load_state_dict(load_checkpoint(run / "best.pt")["model"])
    return model, cfg1


def build_stage_model(cfg: FitConfig, method: Method, ss: ShardSet) -> Classifier:
    if method.stage == "train":
        return build_model(cfg.model, ss.num_classes, cfg.pretrained, head_kind(method, cfg.paper_ldam),
                           cfg.channels)
    model, cfg1 = stage1_model(cfg.init_from, ss)
    if cfg1.get("channels", 3) != cfg.channels:
        raise UsageError(f"--channels {cfg.channels}: the stage-1 run {cfg.init_from} was trained with "
                         f"--channels {cfg1.get('channels', 3)}; give the same")
    if method.stage == "crt":
        model.head = make_head("linear", model.num_features, ss.num_classes)
        model.backbone.requires_grad_(False)
    return model


def set_train_mode(model: Classifier, method: Method, cfg: FitConfig, epoch: int) -> None:
    """Train mode, except: cRT's backbone stays in eval (frozen BatchNorm statistics); with
    --paper-bn-bug, everything stays in eval mode after the first epoch, as the paper's code did."""
    model.train(not (cfg.paper_bn_bug and epoch > 0))
    if method.stage == "crt":
        model.backbone.eval()


class FeatureLoader:
    """cRT on features computed once (no augmentation): same sampler order, batches of feature vectors."""

    def __init__(self, base, backbone: nn.Module, amp):
        self.base, self.ss, self.device, self.train_rows = base, base.ss, base.device, base.train_rows
        self.train_feats = self._features("train", backbone, amp)[2]
        self._views = {}
        self._backbone, self._amp = backbone, amp

    def steps_per_epoch(self) -> int:
        return self.base.steps_per_epoch()

    def epoch_length(self) -> int:
        return self.base.epoch_length()

    def train(self, epoch: int, start_step: int = 0):
        order = self.base.order(self.base.sampler, epoch, 0)
        bs = self.base.batch_size
        for step in range(start_step, self.steps_per_epoch()):
            idx = order[step * bs:(step + 1) * bs]
            yield {"x": self.train_feats[torch.as_tensor(idx).to(self.device, non_blocking=True)],
                   "y": torch.as_tensor(self.base.labels[idx]), "rows": torch.as_tensor(idx)}

    def evaluate(self, view: str):
        """This rank's share of the split's features (see ``ShardLoader.eval_positions``)."""
        if view not in self._views:
            self._views[view] = self._features(view, self._backbone, self._amp)
        rows, labels, feats = self._views[view]
        mine = np.asarray(self.base.eval_positions(view))
        bs = self.base.batch_size
        for lo in range(0, len(mine), bs):
            idx = mine[lo:lo + bs]
            yield {"x": feats[torch.as_tensor(idx, device=feats.device)], "y": torch.as_tensor(labels[idx]),
                   "rows": torch.as_tensor(rows[idx])}

    def _features(self, view: str, backbone: nn.Module, amp):
        """(rows, labels, features on the device) of a split in index order."""
        rows, labels, feats = infer(backbone, self.base, view, amp)
        return rows, labels, feats.to(self.device)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

