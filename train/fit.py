"""python -m train fit: one method, one seed, one run dir; exact resume from any step.

Top to bottom: open the shards and the method, build the model (stage 1, or the
frozen stage-1 backbone for cRT), resume from last.pt if there is one, then
epochs of steps (one AMP path, one mixing convention), validation on
balanced-val (val for multi-label shards) with early stopping by the task's
metric, and the best checkpoint evaluated on the test splits. SIGTERM / SIGINT
checkpoint at the next step and return.
"""
import contextlib
import logging
from pathlib import Path

import torch
from torch import nn

from eval.metrics import balanced_accuracy
from shards.errors import UsageError
from shards.reader import open_shards

from .checkpoint import save_checkpoint
from .config import FitConfig
from .decoupling import sweep_tau, tau_norm_head
from .device import amp_context, configure_kernels, describe, resolve_device
from .distributed import World, barrier, init
from .inference import infer
from .loaders import loader_kind, make_loader
from .methods import get_method
from .results import write_results
from .run import git_commit, log_to_file, versions, write_json
from .rundir import (ResumeRefused, add_to_summary, check_resume, check_method_fits,  # noqa: F401
                     note_unfinished_stage1, open_run_dir, remove_unused)
from .stages import FeatureLoader, build_stage_model, stage1_model
from .trainer import StopFlag, Trainer

log = logging.getLogger(__name__)


def fit(cfg: FitConfig, stop=None) -> str:
    """Train (or finish training) one run; returns 'finished' or 'interrupted'.

    ``stop(epoch, step)``, when given, is asked after every step like a signal would be. Logs go to
    RUN/train.log (a crash's traceback too); a start that fails on a user's mistake removes the run dir it made.
    """
    run = Path(cfg.out)
    world = init(cfg.device)
    check_method_fits(cfg)
    note = note_unfinished_stage1(cfg) if get_method(cfg.method).stage != "train" else None
    made = not run.exists()
    aside = open_run_dir(run, cfg.resume) if world.main else None
    barrier()
    try:
        with log_to_file(run) if world.main else contextlib.nullcontext():
            if aside is not None:
                log.info("--resume never: moved the earlier run in %s aside to %s", run, aside)
            status = _fit(cfg, run, stop, world)
    except UsageError:
        if made and world.main:
            remove_unused(run)
        raise
    if note is not None and status == "finished" and world.main:
        add_to_summary(run, stage1_unfinished=note)
    return status


def _fit(cfg: FitConfig, run: Path, stop, world: World) -> str:
    # the stop flag covers start-up and the final evaluation too: a signal anywhere exits 'interrupted'
    with StopFlag() as flag:
        ss = open_shards(cfg.shards)
        method = get_method(cfg.method)
        index_sha = ss.index_sha256
        saved = check_resume(cfg, run, index_sha)
        if saved is not None and "model" not in saved:
            log.info("%s: finished already (summary.json); nothing to do", run)
            return "finished"
        device = resolve_device(cfg.device, world.local_rank)
        configure_kernels(cfg.deterministic)
        precision, amp = amp_context(cfg, device)
        meta = run_meta(cfg, method, ss, index_sha, precision, device, world)
        if world.main:
            write_json(run / "config.json", meta)
        if method.stage == "tau-norm":
            if world.main:
                _tau_norm(cfg, method, ss, run, device, amp, meta)
            barrier()
            return "finished"
        torch.manual_seed(cfg.seed)
        model = build_stage_model(cfg, method, ss).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        loader = make_loader(cfg, method, ss, device, world.rank, world.size)
        net = model
        if method.stage == "crt" and cfg.crt_features:
            loader, net = FeatureLoader(loader, model.backbone, amp), model.head
        trainer = Trainer(cfg, model, loader, meta, net)
        if saved is not None:
            trainer.restore(saved)
        trainer.announce()
        status = trainer.train(flag, stop)
        return trainer.finish(flag) if status == "finished" else status


def run_meta(cfg: FitConfig, method, ss, index_sha: str, precision: str, device, world: World) -> dict:
    """config.json: the config, what ran (loader, device, CUDA and cuDNN, precision, versions) and on what."""
    return {"config": cfg.to_dict(), "method": vars(method), "precision": precision, "versions": versions(),
            "git_commit": git_commit(), "index_sha256": index_sha, "dataset": ss.manifest["dataset"],
            "synthetic": ss.manifest.get("synthetic", False), "class_names": ss.class_names, "groups": ss.groups,
            "train_counts": ss.train_counts().tolist(), "world_size": world.size, "loader": loader_kind(cfg),
            "shards_image": ss.manifest["image"],  # how the shards were packed: predict repeats it without them
            **describe(device)}


def _tau_norm(cfg, method, ss, run: Path, device, amp, meta) -> dict:
    """No training: sweep tau on balanced-val with the stage-1 classifier (bias dropped), evaluate the best
    and save it as best.pt (the stage-1 backbone and the tau-normalised classifier, the model it evaluated)."""
    model, _ = stage1_model(cfg.init_from, ss)
    if not isinstance(model.head, nn.Linear):
        raise ValueError(f"tau-norm needs a plain linear classifier; {cfg.init_from} has {type(model.head).__name__}")
    model.to(device)
    loader = make_loader(cfg, method, ss, device)
    views = {v: infer(model.backbone, loader, v, amp) for v in ("val", "test")}
    weight = model.head.weight.detach().float()
    _, labels, feats = views["val"]
    best, scores = sweep_tau(feats, labels, weight, lambda y, p: balanced_accuracy(y, p, ss.num_classes))
    log.info("tau-norm: best tau %.2f, val balanced accuracy %.4f (tau 0: %.4f)", best, scores[best], scores[0.0])
    model.head = tau_norm_head(model.head, best)
    save_checkpoint(run / "best.pt", {"model": model.state_dict(), "tau": best, "config": cfg.to_dict()})
    with torch.no_grad():
        preds = {v: (rows, labels, model.head(f.to(weight.device)).cpu().numpy().astype("float64"))
                 for v, (rows, labels, f) in views.items()}
    return write_results(ss, run, meta, preds, {"tau": best, "tau_sweep": scores})
