"""The training loop of one run: epochs of steps, the stop/checkpoint decision, validation, the final evaluation.

The step itself is ``train.loop.step.train_step``; the state a checkpoint carries is
``train.loop.state.TrainState``.
"""
import logging
import signal
import time

import numpy as np
import torch

from shards.loader import Loader
from shards.progress import Progress

from ..context import RunContext
from ..methods.heads import loss_options
from ..methods.losses import make_loss
from ..methods.mixing import get_mixing
from ..methods.registry import method_params
from ..methods.weighting import DeferredReweighting, class_weights
from ..rundir.checkpoint import load_checkpoint, restore_rng, rng_states, save_checkpoint
from ..rundir.events import Events
from ..rundir.files import write_json, write_metrics
from ..rundir.results import write_results
from .distributed import any_true, barrier, gather
from .inference import infer
from .schedule import lr_factor
from .state import TrainState
from .step import NonFiniteLoss, NonFiniteWatch, build_step, train_step

log = logging.getLogger(__name__)

# Under torchrun the ranks agree on stopping and checkpointing every this many steps (and at an epoch's last
# step): the agreement is an all-reduce, which waits for the GPU; a signal is obeyed within as many steps.
DECIDE_EVERY = 16


def _count(n: int) -> str:
    """23.51M, or 10,260 below a million (a cRT head on a small backbone is not '0.00M')."""
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n:,}"


class StopFlag:
    """Set by SIGTERM / SIGINT; the run checkpoints at its next decision point and returns 'interrupted'."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name
        log.warning("%s received: checkpointing at the next step", self.signal)

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def any_rank(self) -> bool:
        """Was a signal received on any rank? (a collective: every rank asks at the same point)"""
        return any_true(bool(self.signal))[0]


class Trainer:
    """Trains ``net`` (the model, or its head for cRT on features) on ``loader``'s batches; checkpoints hold
    ``model``. What the run is (method, task, counts, device, precision, ranks, run dir) comes in ``ctx``.
    Rank 0 alone writes files."""

    def __init__(self, ctx: RunContext, model, loader: Loader, meta: dict, net=None):
        self.ctx, self.cfg, self.model, self.loader, self.meta = ctx, ctx.cfg, model, loader, meta
        self.net = model if net is None else net
        self.method, self.ss, self.device, self.task = ctx.method, ctx.ss, ctx.device, ctx.task
        self.world, self.run = ctx.world, ctx.run
        loss_params, weight_params = method_params(self.method, self.cfg.loss_param)
        weights = None if self.method.weighting == "none" else class_weights(self.method.weighting, ctx.counts,
                                                                             **weight_params)
        self.drw = DeferredReweighting(weights, self.cfg.drw_epoch, self.cfg.drw_lr_factor) if self.method.drw \
            else None
        self.loss_fn = make_loss(self.method.loss, ctx.counts, weights, num_images=ctx.num_images,
                                 **loss_params, **loss_options(self.method.loss, model.head))
        self.loss_fn.to(self.device)
        self.mix_rng = np.random.default_rng([self.cfg.seed, 7])
        self.parts = build_step(ctx, trained=self.net, loss_fn=self.loss_fn, mixing=get_mixing(self.method.mixing),
                                rng=self.mix_rng, to_input=loader.to_input)
        self.optimizer, self.scaler, self.ema = self.parts.optimizer, self.parts.scaler, self.parts.ema
        self.watch = NonFiniteWatch(self.device, self._non_finite)
        self.state = TrainState.start(self.device)
        self.events = Events(self.run / "tensorboard", self.cfg.tensorboard and self.world.main)

    def announce(self) -> None:
        """The start-up header: what runs where, on how many images."""
        m = self.meta
        total = sum(p.numel() for p in self.model.parameters())
        trained = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        images = ", ".join(f"{v} {len(self.ss.view(v))}" for v in ("train", "val", "test"))
        where = m["device"] if m["device_name"] == m["device"] else f"{m['device']} ({m['device_name']})"
        log.info("%s: %s on %s | %s loader, %d workers | %s | %s, %s parameters (%s trained) | "
                 "images: %s | batch %d x %d rank(s)", self.run, self.method.name, where,
                 m["loader"], self.cfg.workers, self.ctx.precision, self.cfg.model, _count(total), _count(trained),
                 images, self.cfg.batch_size, self.world.size)
        if m.get("synthetic"):
            log.warning("these shards hold SYNTHETIC images: the results say nothing about real X-rays")

    # checkpoints -------------------------------------------------------------
    def save_last(self) -> None:
        self.watch.settle()  # never save weights a non-finite step has touched
        if self.world.main:
            save_checkpoint(self.run / "last.pt", {
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_states(), "mix_rng": self.mix_rng.bit_generator.state,
                "state": self.state.to_checkpoint(), "config": self.cfg.to_dict(),
                **({"ema": self.ema.state_dict()} if self.ema else {}),
                "index_sha256": self.meta["index_sha256"], "class_counts": self.meta["train_counts"],
                "method": self.method.name})
        self._last_save = time.monotonic()

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema:
            self.ema.load_state_dict(ckpt["ema"])
        restore_rng(ckpt["rng"])
        self.mix_rng.bit_generator.state = ckpt["mix_rng"]
        self.state = TrainState.from_checkpoint(ckpt["state"], self.device)
        log.info("resumed %s in epoch %d at step %d", self.run, self.state.epoch + 1, self.state.step)

    # the loop ------------------------------------------------------------------
    def train(self, flag: StopFlag, stop=None) -> str:
        """'finished' or 'interrupted'. ``stop(epoch, step)``, when given, is asked like a signal would be."""
        self._last_save = time.monotonic()
        s = self.state
        if flag.any_rank():  # a signal during start-up
            log.warning("interrupted before training resumed; rerun the same command to start it")
            return "interrupted"
        while s.epoch < self.cfg.epochs:
            if s.since_best >= self.cfg.patience:
                log.info("early stop: val %s not better for %d epochs (best %.4f at epoch %d)",
                         self.task.select_name, s.since_best, s.best, s.best_epoch)
                break
            if not self._epoch(flag, stop):
                self.save_last()
                log.warning("interrupted in epoch %d at step %d; checkpoint in %s: rerun the same command to resume",
                            s.epoch + 1, s.step, self.run / "last.pt")
                return "interrupted"
        return "finished"

    def _decide(self, flag: StopFlag, stop, steps: int) -> tuple[bool, bool]:
        """(halt, checkpoint now): one decision for all ranks (a signal on any rank stops all; rank 0's clock
        times the saves). Alone, every step; under torchrun every DECIDE_EVERY steps and at the epoch's end."""
        s = self.state
        if self.world.active and s.step % DECIDE_EVERY and s.step < steps:
            return False, False
        asked = bool(flag.signal or (stop and stop(s.epoch, s.step)))
        due = self.world.main and time.monotonic() - self._last_save > self.cfg.checkpoint_minutes * 60
        halt, due = any_true(asked, due)
        return halt, due

    def _epoch(self, flag: StopFlag, stop) -> bool:
        """One epoch from the saved step; False if stopped part-way."""
        s, epoch = self.state, self.state.epoch
        self._schedule(epoch)
        steps = self.loader.steps_per_epoch()
        todo = self.loader.epoch_length() - s.step * self.cfg.batch_size
        progress = Progress(todo, f"epoch {epoch + 1}/{self.cfg.epochs}", every_s=30)
        start = time.monotonic()
        mark = (s.totals.loss_sum.clone(), s.totals.n)  # the loss sum stays on the device: no wait per step
        for batch in self.loader.train(epoch, s.step):
            self._set_lr(epoch * steps + s.step, steps)
            train_step(self.parts, batch, s.totals, self.watch, (epoch, s.step, batch["rows"]))
            s.step += 1
            if self.events.on and s.step % self.events.every == 0:  # one wait for the device per interval
                self.events.step_loss(float((s.totals.loss_sum - mark[0]) / (s.totals.n - mark[1])),
                                      epoch * steps + s.step)
                mark = (s.totals.loss_sum.clone(), s.totals.n)
            progress.update(len(batch["rows"]))
            halt, due = self._decide(flag, stop, steps)
            if halt or due:
                now = time.monotonic()
                s.totals.seconds, start = s.totals.seconds + now - start, now
            if halt:
                return False
            if due:
                self.save_last()
        progress.close()
        s.totals.seconds += time.monotonic() - start
        self._end_epoch(epoch)
        return True

    def _set_lr(self, step: int, steps_per_epoch: int) -> None:
        """The step's learning rate: --lr x the schedule's factor x DRW's x the group's (the head's): host
        arithmetic on Python floats, no device read."""
        factor = lr_factor(self.cfg.schedule, step, steps_per_epoch, self.cfg.epochs, self.cfg.warmup_epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * self._lr_scale * factor * group.get("lr_factor", 1.0)

    def _schedule(self, epoch: int) -> None:
        """The epoch's DRW factor, class weights (DRW), frozen backbone and train/eval modes."""
        self._lr_scale = self.drw.lr_scale_at(epoch) if self.drw else 1.0
        if self.drw:
            self.loss_fn.set_weights(self.drw.weights_at(epoch))
            if epoch == self.drw.start_epoch:
                log.info("epoch %d: DRW switches on: %s class weights, lr x%g", epoch + 1, self.method.weighting,
                         self.drw.lr_factor)
        self.ctx.stage.set_mode(self.model, self.cfg, epoch)
        if self.cfg.freeze_backbone_epochs and not self.ctx.stage.frozen_backbone:
            frozen = epoch < self.cfg.freeze_backbone_epochs
            self.model.backbone.requires_grad_(not frozen)
            if frozen:
                self.model.backbone.eval()  # its BatchNorm statistics stay too
            if epoch == self.cfg.freeze_backbone_epochs:
                log.info("epoch %d: the backbone trains from now on (--freeze-backbone-epochs)", epoch + 1)

    def _non_finite(self, where, loss: torch.Tensor):
        epoch, step, rows = where
        keys = self.loader.train_rows["key"].iloc[rows.numpy()].tolist()
        value = float(loss)
        write_json(self.run / "nonfinite_batch.json", {"epoch": epoch + 1, "step": step, "loss": str(value),
                                                        "keys": keys})
        raise NonFiniteLoss(f"loss became {value} in epoch {epoch + 1} at step {step}; the batch's keys are in "
                            f"{self.run / 'nonfinite_batch.json'}. Lower --lr, or try --precision bf16 / fp32")

    def predict(self, view: str, tta: str = "none"):
        """(rows, labels, logits as float64) of every image of a split in index order, from all ranks."""
        return self._predict_with(self.net, view, tta)

    def _predict_with(self, net, view: str, tta: str = "none"):
        rows, labels, logits = infer(net, self.loader, view, self.ctx.amp, tta)
        return rows, labels, logits.numpy().astype(np.float64)

    def _end_epoch(self, epoch: int) -> None:
        self.watch.settle()
        s = self.state
        mine = s.totals.host()
        s.skipped += mine["skipped"]
        parts = gather((mine["logits"].numpy(), mine["labels"].numpy(), mine["loss_sum"], mine["n"],
                        mine["seconds"]))
        t_logits, t_labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        n, seconds = sum(p[3] for p in parts), max(p[4] for p in parts)
        _, v_labels, v_logits = self._predict_with(self.ema.module, "val") if self.ema else self.predict("val")
        task = self.task
        row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": sum(p[2] for p in parts) / max(n, 1),
               **{f"train_{k}": v for k, v in task.metrics(t_labels, t_logits).items()},
               "val_loss": task.loss(v_labels, v_logits),
               **{f"val_{k}": v for k, v in task.metrics(v_labels, v_logits).items()},
               "skipped_steps": s.skipped, "images_per_s": n / max(seconds, 1e-9), "seconds": seconds}
        s.history.append(row)
        sel = task.select
        log.info("epoch %d: train loss (%s) %.4f %s %.3f | val loss (%s) %.4f %s %.3f auroc %.3f | %.0f img/s",
                 epoch + 1, self.method.loss, row["train_loss"], sel, row[f"train_{sel}"], task.loss_name,
                 row["val_loss"],
                 sel, row[f"val_{sel}"], row["val_auroc"], row["images_per_s"])
        self._keep_best(row)
        if self.world.main:
            write_metrics(self.run / "metrics.csv", s.history)
            self.events.epoch(row)
        s.next_epoch(self.device)
        self.save_last()
        barrier()  # best.pt and last.pt are on disk before any rank reads them

    def _keep_best(self, row: dict) -> None:
        s, key = self.state, f"val_{self.task.select}"
        if row[key] > s.best or s.best_epoch < 0:  # the first epoch is the best so far, even when its value is NaN
            was = "the first" if s.best_epoch < 0 else f"was {s.best:.4f} at epoch {s.best_epoch}"
            log.info("epoch %d: new best val %s %.4f (%s): best.pt", row["epoch"], self.task.select_name, row[key],
                     was)
            s.best, s.best_epoch, s.since_best = row[key], row["epoch"], 0
            if self.world.main:
                save_checkpoint(self.run / "best.pt", {"model": self._validated_state(), "epoch": row["epoch"],
                                                       key: row[key], "config": self.cfg.to_dict()})
        else:
            s.since_best += 1

    def _validated_state(self) -> dict:
        """The weights validation used: the model's, or with --ema-decay the average (of the whole model, or of
        the head that cRT on features trains, the backbone being the model's)."""
        if not self.ema:
            return self.model.state_dict()
        if self.net is self.model:
            return self.ema.state_dict()
        return {**self.model.state_dict(), **{f"head.{k}": v for k, v in self.ema.state_dict().items()}}

    def finish(self, flag: StopFlag) -> str:
        """Evaluate the best checkpoint on val, balanced-test and test; write predictions and summary.json.
        A signal meanwhile returns 'interrupted' with nothing written: the rerun evaluates again."""
        s = self.state
        self.model.load_state_dict(load_checkpoint(self.run / "best.pt")["model"])
        preds = {}
        for view in ("val", "test"):
            preds[view] = self.predict(view, self.cfg.tta)
            if flag.any_rank():
                log.warning("interrupted during the final evaluation; rerun the same command to finish")
                return "interrupted"
        sel, name = self.task.select, self.task.select_name
        extra = {"best_epoch": s.best_epoch, f"best_val_{sel}": s.best, "epochs_run": s.epoch,
                 "skipped_steps": s.skipped, "pretrained_leakage": self.meta.get("pretrained_leakage")}
        if self.world.main:
            summary = write_results(self.ctx, self.meta, preds, extra)
            log.info("done: best epoch %d of %d (val %s %.4f); test %s %.4f; %s", s.best_epoch, s.epoch, name, s.best,
                     name, summary["test"][sel], self.run / "summary.json")
            final = {f"best_val_{sel}": s.best, **{f"test_{k}": v for k, v in summary["test"].items()
                                                   if isinstance(v, (int, float))}}
            self.events.finish(self.cfg.to_dict(), final)
        barrier()
        return "finished"
