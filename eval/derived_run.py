"""A run-like dir made from saved predictions rather than by training (an ensemble, a run's studies): config.json,
predictions/ and summary.json, which eval report and eval table read like any run's.

Probabilities are saved as logits whose softmax (sigmoid for multi-label) gives them back, so every reader
scores them as it scores a run; a multi-label dir's F1 thresholds are tuned on its own val predictions, as a
run's are (eval.summary).
"""
import json
from pathlib import Path

import numpy as np

from shards.atomic import make_dir, write_atomic

from .metrics import balanced_accuracy
from .predictions import Predictions, write_predictions
from .summary import multilabel_metrics, paper_metrics

EPS = 1e-12  # keeps a probability of exactly 0 or 1 a finite logit


def as_logits(probs: np.ndarray, task: str) -> np.ndarray:
    """Logits whose softmax (sigmoid) is ``probs``: log p, or log p - log(1 - p)."""
    p = np.clip(probs, EPS, 1 - EPS)
    return np.log(p) if task == "single-label" else np.log(p) - np.log1p(-p)


def write_derived_run(out: Path, meta: dict, task: str, splits: dict[str, Predictions], extra: dict) -> None:
    """``out``/config.json (``meta``), predictions/SPLIT.parquet and summary.json (with ``extra``, written last:
    the dir is complete). ``splits``: each split's predictions with probabilities as their logits' place."""
    make_dir(out)
    saved = {}
    for split, p in splits.items():
        logits = as_logits(p.logits, task)
        write_predictions(out / "predictions" / f"{split}.parquet", p.keys, p.patients, p.labels, logits)
        saved[split] = (p.labels, logits)
    write_atomic(out / "config.json", json.dumps(meta, indent=1))
    if task == "multi-label":
        summary = multilabel_metrics(*saved["val"], *saved["test"], meta["groups"], meta["class_names"])
    else:
        summary = paper_metrics(*saved["balanced-test"], *saved["test"], meta["groups"], meta["class_names"])
        val_labels, val_logits = saved["val"]
        summary["val"] = {"bacc": balanced_accuracy(val_labels, val_logits.argmax(1), val_logits.shape[1])}
    summary.update(method=meta["config"]["method"], config=meta["config"], **extra)
    write_atomic(out / "summary.json", json.dumps(summary, indent=1))
