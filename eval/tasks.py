"""The two tasks a shards dir can hold, and what each means for scores, losses and the metric runs are chosen by.

- ``single-label`` (the paper's NIH-CXR-LT): one finding per image; softmax scores; the best epoch is the one
  with the best balanced accuracy on balanced-val.
- ``multi-label`` (the MICCAI 2023 NIH-CXR-LT release, MIMIC-CXR-LT): any number of findings per image, "No
  Finding" one class among the others as the release defines it; a sigmoid per class; the best epoch is the
  one with the best mean average precision (mAP, the CXR-LT challenges' primary metric) on val.

Labels are class indices (N,) for single-label and multi-hot (N, C) for multi-label.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import metrics as m


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))  # no overflow for large |z|


def cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    p = softmax(np.asarray(logits, dtype=np.float64))
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())


def binary_cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean over images and classes of -[y log s(z) + (1 - y) log(1 - s(z))], in its stable form."""
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - np.asarray(labels, dtype=np.float64) * z))


def _single_label(labels, logits) -> dict:
    logits = np.asarray(logits, dtype=np.float64)
    return {"bacc": m.balanced_accuracy(labels, logits.argmax(1), logits.shape[1]),
            "auroc": m.macro_auroc(labels, softmax(logits))}


def _multi_label(labels, logits) -> dict:
    scores = sigmoid(logits)
    return {"map": m.multilabel_map(labels, scores), "auroc": m.multilabel_auroc(labels, scores)}


@dataclass(frozen=True)
class Task:
    name: str
    select: str                 # the key of ``metrics`` that picks the best epoch (metrics.csv: val_<select>)
    select_name: str            # ... in words, for logs
    scores: Callable            # logits -> probabilities
    loss: Callable              # (labels, logits) -> the mean loss reported as val_loss
    loss_name: str              # ... its name in logs
    metrics: Callable           # (labels, logits) -> {name: value}, reported per epoch as train_<name>, val_<name>


TASKS = {t.name: t for t in [
    Task("single-label", "bacc", "balanced accuracy", softmax, cross_entropy, "ce", _single_label),
    Task("multi-label", "map", "mAP", sigmoid, binary_cross_entropy, "bce", _multi_label),
]}


def task_of(manifest: dict) -> Task:
    """The task of a shards dir, from its manifest."""
    return TASKS["multi-label" if manifest.get("multi_label") else "single-label"]
