"""The trainer's state: where the run is, what it has seen, and the epoch's running sums.

The running sums stay on the device while an epoch runs (reading them on the host would wait for the
GPU every step); they come to the host at epoch end and in a checkpoint, which stores them so that a
resumed epoch reports exactly what an uninterrupted one would.
"""
import math
from dataclasses import dataclass, field

import torch


@dataclass
class EpochTotals:
    """The epoch so far: train loss summed over images, logits and labels, steps the fp16 scaler skipped."""
    loss_sum: torch.Tensor
    skipped: torch.Tensor
    n: int = 0
    logits: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def zero(cls, device: torch.device) -> "EpochTotals":
        return cls(torch.zeros((), dtype=torch.float64, device=device),
                   torch.zeros((), dtype=torch.int64, device=device))

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, skipped) -> None:
        """Device work only: ``len`` reads a shape, not a value."""
        self.loss_sum += loss.detach() * len(labels)
        self.skipped += skipped
        self.n += len(labels)
        self.logits.append(logits.detach().float())
        self.labels.append(labels)

    def host(self) -> dict:
        """On the host (one wait for the device): the form stored in checkpoints."""
        empty = self.loss_sum.new_zeros(0)
        return {"loss_sum": float(self.loss_sum), "skipped": int(self.skipped), "n": self.n,
                "logits": torch.cat(self.logits).cpu() if self.logits else empty.float().cpu(),
                "labels": torch.cat(self.labels).cpu() if self.labels else empty.long().cpu(),
                "seconds": self.seconds}

    @classmethod
    def from_host(cls, d: dict, device: torch.device) -> "EpochTotals":
        totals = cls(torch.tensor(d["loss_sum"], dtype=torch.float64, device=device),
                     torch.tensor(d.get("skipped", 0), device=device), d["n"], seconds=d["seconds"])
        if len(d["labels"]):
            totals.logits, totals.labels = [d["logits"].to(device)], [d["labels"].to(device)]
        return totals


@dataclass
class TrainState:
    """Position (epoch, step within it), early stopping, the metrics history, the epoch's running sums.
    ``skipped`` counts the fp16 steps skipped in finished epochs (the current one's are in ``totals``)."""
    totals: EpochTotals
    epoch: int = 0
    step: int = 0
    best: float = -math.inf
    best_epoch: int = -1
    since_best: int = 0
    skipped: int = 0
    history: list = field(default_factory=list)

    @classmethod
    def start(cls, device: torch.device) -> "TrainState":
        return cls(EpochTotals.zero(device))

    def to_checkpoint(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "best": self.best, "best_epoch": self.best_epoch,
                "since_best": self.since_best, "skipped": self.skipped, "history": self.history,
                "accum": self.totals.host()}

    @classmethod
    def from_checkpoint(cls, d: dict, device: torch.device) -> "TrainState":
        return cls(EpochTotals.from_host(d["accum"], device), d["epoch"], d["step"], d["best"], d["best_epoch"],
                   d["since_best"], d["skipped"], d["history"])

    def next_epoch(self, device: torch.device) -> None:
        self.epoch, self.step, self.totals = self.epoch + 1, 0, EpochTotals.zero(device)
