"""python -m train fit: one method, one seed, one run dir; exact resume from any step.

Top to bottom: check the method against the shards' task and its stage's start, open the shards, settle the
run's facts once (``train.context.RunContext``), build the stage's model, resume from last.pt if there is
one, then epochs of steps (one AMP path, one mixing convention), validation on balanced-val (val for
multi-label shards) with early stopping by the task's metric, and the best checkpoint evaluated on the test
splits. A stage that trains nothing (tau-norm) does its own run instead. SIGTERM / SIGINT checkpoint at the
next step and return.
"""
import contextlib
import logging
from pathlib import Path

import torch

from eval.tasks import Task, task_of
from shards.errors import UsageError
from shards.lock import hold
from shards.folds import with_fold
from shards.reader import open_shards, shards_manifest

from ..config import FitConfig
from ..context import RunContext
from ..device import configure_kernels, describe, resolve_device
from ..methods.registry import Method, check_task, get_method, method_params
from ..rundir.files import git_commit, log_to_file, versions, write_json
from ..rundir.resume import add_to_summary, check_resume, note_unfinished_stage1, open_run_dir, remove_unused
from ..weights import leakage
from .distributed import World, barrier, init
from .loaders import loader_kind, make_loader
from .stages import STAGES
from .trainer import StopFlag, Trainer

log = logging.getLogger(__name__)


def fit(cfg: FitConfig, stop=None) -> str:
    """Train (or finish training) one run; returns 'finished' or 'interrupted'.

    ``stop(epoch, step)``, when given, is asked after every step like a signal would be. Logs go to
    RUN/train.log (a crash's traceback too); a start that fails on a user's mistake removes the run dir it made.
    """
    run = Path(cfg.out)
    world = init(cfg.device)
    method = get_method(cfg.method)
    task = task_of(shards_manifest(cfg.shards))  # only the manifest: refused before a run dir is made
    check_task(method, task.name, cfg.shards)
    method_params(method, cfg.loss_param)  # a name the loss does not take: refused before a run dir exists
    note = note_unfinished_stage1(cfg, method) if STAGES[method.stage].from_stage1 else None
    made = not run.exists()
    with contextlib.ExitStack() as held:
        try:
            if world.main:
                held.enter_context(hold(run, "train fit"))  # before anything in it is moved or read
            aside = open_run_dir(run, cfg.resume) if world.main else None
            if aside is not None:
                held.enter_context(hold(run, "train fit"))  # the new dir; the old one moved aside with its lock
            barrier()
            with log_to_file(run) if world.main else contextlib.nullcontext():
                if aside is not None:
                    log.info("--resume never: moved the earlier run in %s aside to %s", run, aside)
                status = _fit(cfg, method, task, stop, world)
        except UsageError:
            if made and world.main:
                remove_unused(run)
            raise
        if note is not None and status == "finished" and world.main:
            add_to_summary(run, stage1_unfinished=note)
    return status


def _fit(cfg: FitConfig, method: Method, task: Task, stop, world: World) -> str:
    # the stop flag covers start-up and the final evaluation too: a signal anywhere exits 'interrupted'
    with StopFlag() as flag:
        ss = open_shards(cfg.shards)
        if cfg.folds:
            ss = with_fold(ss, cfg.folds, cfg.fold, cfg.fold_seed)
        saved = check_resume(cfg, Path(cfg.out), ss.index_sha256)
        if saved is not None and "model" not in saved:
            log.info("%s: finished already (summary.json); nothing to do", cfg.out)
            return "finished"
        device = resolve_device(cfg.device, world.local_rank)
        configure_kernels(cfg.deterministic)
        ctx = RunContext.build(cfg, method, task, ss, device, world)
        meta = run_meta(ctx)
        if meta["pretrained_leakage"]:
            log.warning("%s", meta["pretrained_leakage"])
        if world.main:
            write_json(ctx.run / "config.json", meta)
        torch.manual_seed(cfg.seed)
        model = ctx.stage.build(ctx).to(device)
        if ctx.stage.run is not None:  # tau-norm: no training
            if world.main:
                ctx.stage.run(ctx, model, meta)
            barrier()
            return "finished"
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        loader, net = ctx.stage.trained(ctx, model, make_loader(ctx))
        trainer = Trainer(ctx, model, loader, meta, net)
        if saved is not None:
            trainer.restore(saved)
        trainer.announce()
        status = trainer.train(flag, stop)
        return trainer.finish(flag) if status == "finished" else status


def run_meta(ctx: RunContext) -> dict:
    """config.json: the config, what ran (loader, device, CUDA and cuDNN, precision, versions) and on what."""
    ss = ctx.ss
    return {"config": ctx.cfg.to_dict(), "method": vars(ctx.method), "precision": ctx.precision,
            "versions": versions(), "git_commit": git_commit(), "index_sha256": ss.index_sha256,
            "dataset": ss.manifest["dataset"], "synthetic": ss.manifest.get("synthetic", False),
            "class_names": ss.class_names, "groups": ss.groups, "train_counts": ctx.counts.tolist(),
            "world_size": ctx.world.size, "loader": loader_kind(ctx.cfg),
            "shards_image": ss.manifest["image"],  # how the shards were packed: predict repeats it without them
            "input": ctx.input,  # the model's input scaling: loaders, predict and export use it
            "pretrained_leakage": leakage(ctx.cfg.pretrained_source, ss.manifest["dataset"]),
            **describe(ctx.device)}
