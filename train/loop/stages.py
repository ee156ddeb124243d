"""The stage registry: how each stage builds its model, what of it trains and in which mode, the head of the
model it saves, and whether it trains at all. ``fit``, ``suite``, ``load_model`` and ``bench`` ask it.

- ``train``: a new model, from scratch or ImageNet weights.
- ``crt``: decoupling's classifier re-training (Kang et al., arXiv 1910.09217): a freshly initialised linear
  classifier trained with class-balanced sampling on the frozen stage-1 backbone (its BatchNorm statistics
  frozen too); with ``--crt-features`` on backbone features computed once.
- ``tau-norm``: the stage-1 classifier rescaled by tau (``train.methods.decoupling``), tau swept on the
  validation split; no training.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from eval.metrics import balanced_accuracy
from eval.runs import read_json
from eval.tasks import Task
from shards.errors import UsageError
from shards.reader import ShardSet

from ..methods.decoupling import sweep_tau, tau_norm_head
from ..methods.heads import make_head
from ..methods.registry import BASELINE, Method, get_method, head_scale
from ..models import Classifier, build_model
from ..rundir.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..rundir.results import write_results
from .inference import infer
from .distributed import World
from .loaders import FeatureLoader, make_loader

log = logging.getLogger(__name__)


def method_head(method: Method, cfg: dict) -> str:
    """The head a stage-1 run trains: the method's, or a plain linear one with --paper-ldam."""
    return "linear" if cfg.get("paper_ldam") else method.head


def stage1_model(init_from: str, ss: ShardSet, task: Task) -> tuple[Classifier, dict]:
    """The stage-1 run's model with its best.pt weights, and its config."""
    run = Path(init_from)
    if not (run / "best.pt").exists():
        raise UsageError(f"--init-from {run}: no best.pt; train the stage-1 run first (for example "
                         f"`python -m train fit --method {BASELINE[task.name]} --out {run} ...`)")
    cfg1 = read_json(run / "config.json")["config"]
    method1 = get_method(cfg1["method"])
    if STAGES[method1.stage].from_stage1 or method1.task != task.name:
        raise UsageError(f"--init-from {run} is a {method1.name} run; start from a stage-1 {task.name} run such as "
                         f"{BASELINE[task.name]}")
    model = build_model(cfg1["model"], ss.num_classes, "none", method_head(method1, cfg1), cfg1.get("channels", 3),
                        head_scale=head_scale(method1, cfg1))
    fix = "give --init-from a finished stage-1 run of this tool"
    load_weights(model, load_checkpoint(run / "best.pt", fix)["model"], run / "best.pt", fix)
    return model, cfg1


def _from_stage1(ctx) -> Classifier:
    cfg = ctx.cfg
    model, cfg1 = stage1_model(cfg.init_from, ctx.ss, ctx.task)
    if cfg1.get("channels", 3) != cfg.channels:
        raise UsageError(f"--channels {cfg.channels}: the stage-1 run {cfg.init_from} was trained with "
                         f"--channels {cfg1.get('channels', 3)}; give the same")
    return model


def _new_model(ctx) -> Classifier:
    cfg = ctx.cfg
    return build_model(cfg.model, ctx.ss.num_classes, cfg.pretrained, method_head(ctx.method, vars(cfg)),
                       cfg.channels, cfg.drop_path, head_scale(ctx.method, vars(cfg)))


def _new_classifier(ctx) -> Classifier:
    model = _from_stage1(ctx)
    model.head = make_head("linear", model.num_features, ctx.ss.num_classes)
    model.backbone.requires_grad_(False)
    return model


def _tau_norm(ctx, model: Classifier, meta: dict) -> dict:
    """Sweep tau on the validation split with the stage-1 classifier (bias dropped), evaluate the best and save
    it as best.pt (the stage-1 backbone and the tau-normalised classifier, the model it evaluated)."""
    if not isinstance(model.head, nn.Linear):
        raise ValueError(f"tau-norm needs a plain linear classifier; {ctx.cfg.init_from} has "
                         f"{type(model.head).__name__}")
    ss = ctx.ss
    loader = make_loader(ctx, World())  # rank 0 alone sweeps, over every image
    views = {v: infer(model.backbone, loader, v, ctx.amp) for v in ("val", "test")}
    weight = model.head.weight.detach().float()
    _, labels, feats = views["val"]
    best, scores = sweep_tau(feats, labels, weight, lambda y, p: balanced_accuracy(y, p, ss.num_classes))
    log.info("tau-norm: best tau %.2f, val balanced accuracy %.4f (tau 0: %.4f)", best, scores[best], scores[0.0])
    model.head = tau_norm_head(model.head, best)
    save_checkpoint(ctx.run / "best.pt", {"model": model.state_dict(), "tau": best, "config": ctx.cfg.to_dict()})
    with torch.no_grad():
        preds = {v: (rows, labels, model.head(f.to(weight.device)).cpu().numpy().astype("float64"))
                 for v, (rows, labels, f) in views.items()}
    return write_results(ctx, meta, preds, {"tau": best, "tau_sweep": scores})


@dataclass(frozen=True)
class Stage:
    """``build(ctx)``: the model of the run (on the CPU); ``saved_head(method, cfg)``: the head kind of the model
    in its best.pt; ``run(ctx, model, meta)``, for a stage that trains nothing, does its whole work instead."""
    name: str
    build: Callable
    saved_head: Callable
    from_stage1: bool = False       # starts from --init-from, whose backbone it keeps
    frozen_backbone: bool = False   # only the head trains; the backbone stays in eval mode
    run: Callable | None = None

    def set_mode(self, model: Classifier, cfg, epoch: int) -> None:
        """Train mode, except: a frozen backbone stays in eval (frozen BatchNorm statistics); with
        --paper-bn-bug, everything stays in eval mode after the first epoch, as the paper's code did."""
        model.train(not (cfg.paper_bn_bug and epoch > 0))
        if self.frozen_backbone:
            model.backbone.eval()

    def trained(self, ctx, model: Classifier, loader):
        """(loader, module trained): the model itself, or with --crt-features its head on cached features."""
        if self.frozen_backbone and ctx.cfg.crt_features:
            return FeatureLoader(loader, model.backbone, ctx.amp), model.head
        return loader, model


STAGES = {s.name: s for s in [
    Stage("train", _new_model, method_head),
    Stage("crt", _new_classifier, lambda method, cfg: "linear", from_stage1=True, frozen_backbone=True),
    Stage("tau-norm", _from_stage1, lambda method, cfg: "unbiased", from_stage1=True, run=_tau_norm),
]}


def stage1_architecture(cfg: dict) -> str:
    """The backbone of a run that kept its stage-1 run's: that run's --model when its config.json is reachable."""
    path = Path(cfg.get("init_from") or "") / "config.json"
    return read_json(path)["config"]["model"] if cfg.get("init_from") and path.is_file() else cfg["model"]
