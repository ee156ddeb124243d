"""python -m train fit: one method, one seed, one run dir; exact resume from any step.

Top to bottom: open the shards and the method, build the model (stage 1, or the
frozen stage-1 backbone for cRT), resume from last.pt if there is one, then
epochs of steps (one AMP path, one mixing convention), validation on
balanced-val with early stopping, and the best checkpoint evaluated on
balanced-test and test. SIGTERM / SIGINT checkpoint at the next step and return.
"""
import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from eval.metrics import balanced_accuracy
from shards.reader import open_shards

from .checkpoint import load_checkpoint
from .config import FitConfig, config_changes
from .decoupling import sweep_tau, tau_logits
from .distributed import World, barrier, init
from .loaders import make_loader
from .methods import get_method
from .run import git_commit, index_hash, log_to_file, versions, write_json
from .stages import FeatureLoader, build_stage_model, extract_features, stage1_model
from .trainer import Trainer, write_results

log = logging.getLogger(__name__)


class ResumeRefused(RuntimeError):
    pass


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    return torch.device("cuda", local_rank) if device.type == "cuda" and device.index is None else device


def amp_context(cfg: FitConfig, device: torch.device):
    precision = cfg.precision if cfg.precision != "auto" else ("fp16" if device.type == "cuda" else "fp32")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[precision]
    return precision, lambda: torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def fit(cfg: FitConfig, stop=None) -> str:
    """Train (or finish training) one run; returns 'finished' or 'interrupted'.

    ``stop(epoch, step)``, when given, is asked after every step like a signal would be.
    """
    run = Path(cfg.out)
    world = init(cfg.device)
    if world.main:
        run.mkdir(parents=True, exist_ok=True)
    barrier()
    handler = log_to_file(run) if world.main else None
    try:
        return _fit(cfg, run, stop, world)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _check_resume(cfg: FitConfig, run: Path, index_sha: str) -> dict | None:
    """The checkpoint to resume from, or None; a changed config or index is refused."""
    path = run / "summary.json" if (run / "summary.json").exists() else run / "last.pt"
    if cfg.resume == "never" or not path.exists():
        return None
    saved = json.loads(path.read_text()) if path.suffix == ".json" else load_checkpoint(path)
    changes = config_changes(saved["config"], cfg.to_dict())
    if saved["index_sha256"] != index_sha:
        changes.append("shards index.parquet changed (different images, labels or build)")
    if changes:
        raise ResumeRefused(f"{run} holds a run with another setup: {'; '.join(changes)}. Use a new --out, "
                            f"or --resume never to start this run dir over")
    return saved


def _fit(cfg: FitConfig, run: Path, stop, world: World) -> str:
    ss = open_shards(cfg.shards)
    method = get_method(cfg.method)
    index_sha = index_hash(cfg.shards)
    saved = _check_resume(cfg, run, index_sha)
    if saved is not None and "model" not in saved:
        log.info("%s: finished already (summary.json); nothing to do", run)
        return "finished"
    device = resolve_device(cfg.device, world.local_rank)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    precision, amp = amp_context(cfg, device)
    meta = {"config": cfg.to_dict(), "method": vars(method), "precision": precision, "versions": versions(),
            "git_commit": git_commit(), "index_sha256": index_sha, "dataset": ss.manifest["dataset"],
            "class_names": ss.class_names,
            "groups": ss.groups, "train_counts": ss.train_counts().tolist(), "world_size": world.size}
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
    trainer = Trainer(cfg, method, ss, model, net, distribute(net, cfg, device, world), loader, device, precision,
                      amp, run, meta, world)
    if saved is not None:
        trainer.restore(saved)
    status = trainer.train(stop)
    if status == "finished":
        trainer.finish()
    return status


def distribute(net: nn.Module, cfg: FitConfig, device, world: World) -> nn.Module:
    """The module the train step runs: ``net``, wrapped in DDP under torchrun (gradients averaged) and
    compiled with --compile. Evaluation runs ``net`` itself: it shares the same parameters."""
    if world.active:
        if cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if cfg.compile else net


def _tau_norm(cfg, method, ss, run: Path, device, amp, meta) -> dict:
    """No training: sweep tau on balanced-val with the stage-1 classifier (bias dropped), evaluate the best."""
    model, _ = stage1_model(cfg.init_from, ss)
    if not isinstance(model.head, nn.Linear):
        raise ValueError(f"tau-norm needs a plain linear classifier; {cfg.init_from} has {type(model.head).__name__}")
    model.to(device)
    loader = make_loader(cfg, method, ss, device)
    views = {v: extract_features(model.backbone, loader, v, amp) for v in ("val", "test")}
    weight = model.head.weight.detach().float()
    feats, labels, _ = views["val"]
    best, scores = sweep_tau(feats, labels, weight, lambda y, p: balanced_accuracy(y, p, ss.num_classes))
    log.info("tau-norm: best tau %.2f, val balanced accuracy %.4f (tau 0: %.4f)", best, scores[best], scores[0.0])
    preds = {v: (rows, labels, tau_logits(f, weight, best).cpu().numpy().astype("float64"))
             for v, (f, labels, rows) in views.items()}
    return write_results(ss, run, meta, preds, {"tau": best, "tau_sweep": scores})
