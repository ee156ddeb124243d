"""The training loop of one run: steps, epochs, validation, checkpoints, final evaluation."""
import logging
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch

from eval.metrics import balanced_accuracy, macro_auroc
from eval.summary import paper_metrics, softmax

from shards.progress import Progress

from .checkpoint import load_checkpoint, restore_rng, rng_states, save_checkpoint
from .distributed import any_true, barrier, gather
from .heads import loss_options
from .losses import make_loss
from .mixing import balanced_mixup, mixup, no_mix
from eval.predictions import write_predictions

from .run import write_json, write_metrics
from .stages import set_train_mode
from .weighting import DeferredReweighting, class_weights

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    pass


def cross_entropy_np(labels: np.ndarray, logits: np.ndarray) -> float:
    p = softmax(logits.astype(np.float64))
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop checkpoints at the next step boundary."""

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


def optimize(net, x, target, loss_fn, optimizer, scaler, amp, on_non_finite=None):
    """One AMP step: forward under autocast, GradScaler (enabled for fp16 only), optimizer step.

    Returns (loss, logits, 1 if the scaler skipped the step for inf/NaN gradients else 0)."""
    with amp():
        logits = net(x)
        loss = loss_fn(logits, target)
    if on_non_finite is not None and not torch.isfinite(loss):
        on_non_finite(float(loss.detach()))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scale = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    return loss, logits, int(scale is not None and scaler.get_scale() < scale)


class Trainer:
    """``net`` is what is trained and evaluated (the model, or its head for cRT on features); ``step_net``
    the same wrapped for DistributedDataParallel under torchrun. Rank 0 alone writes files."""

    def __init__(self, cfg, method, ss, model, net, step_net, loader, device, precision, amp, run: Path,
                 meta: dict, world):
        self.cfg, self.method, self.ss, self.model, self.net, self.step_net = cfg, method, ss, model, net, step_net
        self.loader, self.device, self.amp, self.run, self.meta, self.world = loader, device, amp, run, meta, world
        counts = ss.train_counts()
        weights = class_weights(method.weighting, counts)
        self.drw = DeferredReweighting(weights, cfg.drw_epoch, cfg.drw_lr_factor) if method.drw else None
        self.loss_fn = make_loss(method.loss, counts, None if method.weighting == "none" else weights,
                                 **method.loss_params, **loss_options(method.loss, model.head)).to(device)
        self.optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.mix_rng = np.random.default_rng([cfg.seed, 7])
        self.state = {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": -1, "since_best": 0,
                      "history": [], "skipped": 0, "accum": self._fresh_accum()}

    @staticmethod
    def _fresh_accum() -> dict:
        return {"loss_sum": 0.0, "n": 0, "logits": [], "labels": [], "seconds": 0.0}

    # checkpoints -------------------------------------------------------------
    def _checkpoint(self) -> dict:
        accum = dict(self.state["accum"])
        accum["logits"] = torch.cat(accum["logits"]) if accum["logits"] else torch.zeros(0)
        accum["labels"] = torch.cat(accum["labels"]) if accum["labels"] else torch.zeros(0, dtype=torch.long)
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_states(),
                "mix_rng": self.mix_rng.bit_generator.state, "state": {**self.state, "accum": accum},
                "config": self.cfg.to_dict(), "index_sha256": self.meta["index_sha256"],
                "class_counts": self.meta["train_counts"], "method": self.method.name}

    def save_last(self) -> None:
        if self.world.main:
            save_checkpoint(self.run / "last.pt", self._checkpoint())
        self._last_save = time.monotonic()

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"])
        self.mix_rng.bit_generator.state = ckpt["mix_rng"]
        self.state = ckpt["state"]
        accum = self.state["accum"]
        accum["logits"] = [accum["logits"]] if len(accum["logits"]) else []
        accum["labels"] = [accum["labels"]] if len(accum["labels"]) else []
        log.info("resumed %s at epoch %d step %d", self.run, self.state["epoch"], self.state["step"])

    # the loop ------------------------------------------------------------------
    def train(self, stop=None) -> str:
        self._last_save = time.monotonic()
        with StopFlag() as flag:
            while self.state["epoch"] < self.cfg.epochs and self.state["since_best"] < self.cfg.patience:
                if not self._epoch(flag, stop):
                    self.save_last()
                    log.warning("interrupted at epoch %d step %d; checkpoint in %s: rerun the same command "
                                "to resume", self.state["epoch"], self.state["step"], self.run / "last.pt")
                    return "interrupted"
        return "finished"

    def _epoch(self, flag, stop) -> bool:
        """One epoch from the saved step; False if stopped part-way."""
        epoch = self.state["epoch"]
        lr_scale = self.drw.lr_scale_at(epoch) if self.drw else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * lr_scale
        if self.drw:
            self.loss_fn.set_weights(self.drw.weights_at(epoch))
        set_train_mode(self.model, self.method, self.cfg, epoch)
        todo = self.loader.epoch_length() - self.state["step"] * self.cfg.batch_size
        progress = Progress(todo, f"epoch {epoch + 1}/{self.cfg.epochs}", every_s=30)
        start = time.monotonic()
        for batch in self.loader.train(epoch, self.state["step"]):
            self._step(batch)
            self.state["step"] += 1
            progress.update(len(batch["y"]))
            # one decision for all ranks: a signal on any rank stops all; rank 0's clock times the saves
            asked = bool(flag.signal or (stop and stop(epoch, self.state["step"])))
            due = self.world.main and time.monotonic() - self._last_save > self.cfg.checkpoint_minutes * 60
            halt, due = any_true(asked, due)
            if halt:
                self.state["accum"]["seconds"] += time.monotonic() - start
                return False
            if due:
                self.save_last()
        progress.close()
        self.state["accum"]["seconds"] += time.monotonic() - start
        self._end_epoch(epoch)
        return True

    def _mix(self, batch):
        x, y = self.loader.to_input(batch["x"]), batch["y"].to(self.device)
        if self.method.mixing == "balanced-mixup":
            x2, y2 = self.loader.to_input(batch["x2"]), batch["y2"].to(self.device)
            return balanced_mixup(x, y, x2, y2, self.cfg.mixup_alpha, self.mix_rng)
        if self.method.mixing == "mixup":
            return mixup(x, y, self.cfg.mixup_alpha, self.mix_rng)
        return no_mix(x, y)

    def _step(self, batch) -> None:
        x, y_a, y_b, lam = self._mix(batch)
        loss, logits, skipped = optimize(self.step_net, x, (y_a, y_b, lam), self.loss_fn, self.optimizer, self.scaler,
                                         self.amp, on_non_finite=lambda value: self._non_finite(batch, value))
        self.state["skipped"] += skipped
        accum = self.state["accum"]
        accum["loss_sum"] += float(loss.detach()) * len(y_a)
        accum["n"] += len(y_a)
        accum["logits"].append(logits.detach().float().cpu())
        accum["labels"].append(y_a.cpu())

    def _non_finite(self, batch, value: float):
        keys = self.loader.train_rows["key"].iloc[batch["rows"].numpy()].tolist()
        write_json(self.run / "nonfinite_batch.json", {"epoch": self.state["epoch"], "step": self.state["step"],
                                                        "loss": str(value), "keys": keys})
        raise NonFiniteLoss(f"loss became {value} at epoch {self.state['epoch']} step {self.state['step']}; "
                            f"the batch's keys are in {self.run / 'nonfinite_batch.json'}. Lower --lr, or try "
                            f"--precision bf16 / fp32")

    @torch.no_grad()
    def predict(self, view: str):
        """(rows, labels, logits) of every image of a split in index order, gathered from all ranks."""
        self.net.eval()
        logits, labels, rows = [], [], []
        for batch in self.loader.evaluate(view):
            with self.amp():
                logits.append(self.net(self.loader.to_input(batch["x"])).float().cpu())
            labels.append(batch["y"].numpy())
            rows.append(batch["rows"].numpy())
        parts = gather((np.concatenate(rows), np.concatenate(labels), torch.cat(logits).numpy()))
        rows, labels, logits = (np.concatenate([p[i] for p in parts]) for i in range(3))
        order = np.argsort(rows, kind="stable")
        return rows[order], labels[order], logits[order].astype(np.float64)

    def _end_epoch(self, epoch: int) -> None:
        mine = self.state["accum"]
        parts = gather((torch.cat(mine["logits"]).numpy(), torch.cat(mine["labels"]).numpy(), mine["loss_sum"],
                        mine["n"], mine["seconds"]))
        t_logits, t_labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        accum = {"loss_sum": sum(p[2] for p in parts), "n": sum(p[3] for p in parts),
                 "seconds": max(p[4] for p in parts)}
        _, v_labels, v_logits = self.predict("val")
        c = self.ss.num_classes
        row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": accum["loss_sum"] / max(accum["n"], 1),
               "train_bacc": balanced_accuracy(t_labels, t_logits.argmax(1), c),
               "train_auroc": macro_auroc(t_labels, softmax(t_logits.astype(np.float64))),
               "val_loss": cross_entropy_np(v_labels, v_logits),
               "val_bacc": balanced_accuracy(v_labels, v_logits.argmax(1), c),
               "val_auroc": macro_auroc(v_labels, softmax(v_logits)), "skipped_steps": self.state["skipped"],
               "images_per_s": accum["n"] / max(accum["seconds"], 1e-9), "seconds": accum["seconds"]}
        self.state["history"].append(row)
        log.info("epoch %d: train loss %.4f bacc %.3f | val loss %.4f bacc %.3f auroc %.3f | %.0f img/s",
                 epoch + 1, row["train_loss"], row["train_bacc"], row["val_loss"], row["val_bacc"],
                 row["val_auroc"], row["images_per_s"])
        if row["val_bacc"] > self.state["best"]:
            self.state.update(best=row["val_bacc"], best_epoch=epoch + 1, since_best=0)
            if self.world.main:
                save_checkpoint(self.run / "best.pt", {"model": self.model.state_dict(), "epoch": epoch + 1,
                                                       "val_bacc": row["val_bacc"], "config": self.cfg.to_dict()})
        else:
            self.state["since_best"] += 1
        if self.world.main:
            write_metrics(self.run / "metrics.csv", self.state["history"])
            self._tensorboard(row)
        self.state.update(epoch=epoch + 1, step=0, accum=self._fresh_accum())
        self.save_last()
        barrier()  # best.pt and last.pt are on disk before any rank reads them

    def _tensorboard(self, row: dict) -> None:
        """TensorBoard events in RUN/tensorboard when the package is installed and --tensorboard is on."""
        if not self.cfg.tensorboard:
            return
        if not hasattr(self, "_tb"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: no events written (pip install tensorboard)")
                self._tb = None
            else:
                self._tb = SummaryWriter(str(self.run / "tensorboard"))
        if self._tb is not None:
            for key, value in row.items():
                if key != "epoch":
                    self._tb.add_scalar(key, value, row["epoch"])
            self._tb.flush()

    def finish(self) -> dict:
        """Evaluate the best checkpoint on val, balanced-test and test; write predictions and summary.json."""
        self.model.load_state_dict(load_checkpoint(self.run / "best.pt")["model"])
        extra = {"best_epoch": self.state["best_epoch"], "best_val_bacc": self.state["best"],
                 "epochs_run": self.state["epoch"], "skipped_steps": self.state["skipped"]}
        preds = {v: self.predict(v) for v in ("val", "test")}
        summary = write_results(self.ss, self.run, self.meta, preds, extra) if self.world.main else None
        barrier()
        return summary


def write_results(ss, run: Path, meta: dict, preds: dict, extra: dict) -> dict:
    """predictions/{val,balanced-test,test}.parquet and summary.json (written last: the run is done).

    ``preds[view]`` is (rows of the view, labels, logits)."""
    out = {}
    for view in ("val", "test"):
        rows, labels, logits = preds[view]
        view_rows = ss.view(view).iloc[rows]
        keys, patients = view_rows["key"].to_numpy(), view_rows["patient_id"].to_numpy()
        write_predictions(run / "predictions" / f"{view}.parquet", keys, patients, labels, logits)
        if view == "test":
            bt = view_rows["balanced_test"].to_numpy()
            write_predictions(run / "predictions" / "balanced-test.parquet", keys[bt], patients[bt],
                              labels[bt], logits[bt])
            out["bt"] = (labels[bt], logits[bt])
        out[view] = (labels, logits)
    summary = paper_metrics(*out["bt"], *out["test"], ss.groups, ss.class_names)
    summary["val"] = {"bacc": balanced_accuracy(out["val"][0], out["val"][1].argmax(1), ss.num_classes)}
    summary.update(extra, method=meta["config"]["method"], config=meta["config"], index_sha256=meta["index_sha256"])
    write_json(run / "summary.json", summary)
    return summary
