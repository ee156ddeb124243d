"""Two-stage methods: the stage-1 model a run starts from, cRT's frozen backbone, tau-norm's sweep.

Decoupling (Kang et al., arXiv 1910.09217): cRT re-trains a freshly initialised
classifier with class-balanced sampling on the frozen stage-1 backbone (its
BatchNorm statistics frozen too); tau-norm rescales the stage-1 classifier
without training, tau chosen on balanced-val.
"""
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shards.reader import ShardSet

from .checkpoint import load_checkpoint
from .config import FitConfig
from .distributed import gather
from .methods import Method, get_method
from .models import Classifier, build_model, make_head


def head_kind(method: Method, cfg_paper_ldam: bool) -> str:
    return "linear" if cfg_paper_ldam else method.head


def stage1_model(init_from: str, ss: ShardSet) -> tuple[Classifier, dict]:
    run = Path(init_from)
    if not (run / "best.pt").exists():
        raise FileNotFoundError(f"--init-from {run}: no best.pt; train the stage-1 run first (for example "
                                f"`python -m train fit --method ce --out {run} ...`)")
    cfg1 = json.loads((run / "config.json").read_text())["config"]
    method1 = get_method(cfg1["method"])
    if method1.stage != "train":
        raise ValueError(f"--init-from {run} is a {method1.name} run; start from a stage-1 run such as ce")
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
        raise ValueError(f"--channels {cfg.channels}: the stage-1 run {cfg.init_from} was trained with "
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


@torch.no_grad()
def extract_features(backbone: nn.Module, loader, view: str, amp) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Features of every image of a split, in index order (each rank computes its share, then all gather)."""
    backbone.eval()
    feats, labels, rows = [], [], []
    for batch in loader.evaluate(view):
        with amp():
            feats.append(backbone(loader.to_input(batch["x"])).float().cpu())
        labels.append(batch["y"].numpy())
        rows.append(batch["rows"].numpy())
    parts = gather((torch.cat(feats), np.concatenate(labels), np.concatenate(rows)))
    f = torch.cat([p[0] for p in parts])
    y, r = (np.concatenate([p[i] for p in parts]) for i in (1, 2))
    order = np.argsort(r, kind="stable")
    return f[torch.as_tensor(order)].to(loader.device), y[order], r[order]


class FeatureLoader:
    """cRT on features computed once (no augmentation): same sampler order, batches of feature vectors."""

    def __init__(self, base, backbone: nn.Module, amp):
        self.base, self.device, self.train_rows = base, base.device, base.train_rows
        self.train_feats, _, _ = extract_features(backbone, base, "train", amp)
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
            idx = torch.as_tensor(order[step * bs:(step + 1) * bs])
            yield {"x": self.train_feats[idx.to(self.train_feats.device)],
                   "y": torch.as_tensor(self.base.labels[idx.numpy()]), "rows": idx}

    def evaluate(self, view: str):
        """This rank's share of the split's features (see ``ShardLoader.eval_positions``)."""
        if view not in self._views:
            self._views[view] = extract_features(self._backbone, self.base, view, self._amp)
        feats, labels, rows = self._views[view]
        mine = np.asarray(self.base.eval_positions(view))
        bs = self.base.batch_size
        for lo in range(0, len(mine), bs):
            idx = mine[lo:lo + bs]
            yield {"x": feats[torch.as_tensor(idx, device=feats.device)], "y": torch.as_tensor(labels[idx]),
                   "rows": torch.as_tensor(rows[idx])}

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device)

