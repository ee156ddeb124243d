"""A run's numbers from its predictions.

Single-label (the paper's): balanced-test group accuracies, test mF1 / bAcc / AUROC / MCC.
Multi-label (the CXR-LT challenges'): test mAP (primary), head / medium / tail mAP, macro AUROC, macro F1 at
0.5 and at per-class thresholds tuned on val, and per class AP, AUROC, support and threshold.
"""
import numpy as np

from . import metrics as m
from .calibration import calibration
from .tasks import sigmoid, softmax

# the scalar test numbers of a multi-label run and their column heads, in the order of its tables
MULTILABEL_HEADS = {"map": "mAP", "map_head": "Head mAP", "map_medium": "Medium mAP", "map_tail": "Tail mAP",
                    "map_avg": "Avg mAP", "auroc": "AUROC", "f1": "F1@0.5", "f1_tuned": "F1@tuned"}
MULTILABEL_KEYS = tuple(MULTILABEL_HEADS)
# how the head / medium / tail of a multi-label run were set (``ingest.adapters``: the manifest's group_rule)
GROUPS_NOTE = ("groups by training count, head > 1000, tail < 100: NIH-CXR-LT's by the benchmark's published "
               "counts, others' by their training positives")
# why a multi-label interval can sit above its point estimate (measured on the demo's bce run: the classes with
# 20+ test positives have mAP 0.389 and a bootstrap median of 0.402; all classes 0.234 and 0.255)
RESAMPLE_NOTE = ("AP rises under resampling (a drawn-twice positive ties with itself, and a resample without a "
                 "rare class's positive leaves that class out), most where positives are few, so an mAP interval "
                 "can sit above its point estimate")


def paper_metrics(bt_labels, bt_logits, test_labels, test_logits, groups, class_names) -> dict:
    c = len(class_names)
    bt_pred = np.asarray(bt_logits).argmax(1)
    test_pred = np.asarray(test_logits).argmax(1)
    per_class = m.per_class_accuracy(bt_labels, bt_pred, c)
    return {
        "task": "single-label",
        "balanced_test": {**m.group_accuracy(bt_labels, bt_pred, groups),
                          "per_class": dict(zip(class_names, per_class.tolist()))},
        "test": {"mf1": m.macro_f1(test_labels, test_pred, c),
                 "bacc": m.balanced_accuracy(test_labels, test_pred, c),
                 "auroc": m.macro_auroc(test_labels, softmax(np.asarray(test_logits, dtype=np.float64))),
                 "mcc": m.mcc(test_labels, test_pred, c)},
        "groups": dict(zip(class_names, groups)),
        "calibration": {"test": calibration(test_labels, test_logits, "single-label")},
    }


def multilabel_numbers(labels, scores, groups, thresholds) -> np.ndarray:
    """The values of MULTILABEL_KEYS, then the AP and the AUROC of each class, as one vector (one
    bootstrap resample computes each AP once). A class without positives has NaN AP and AUROC and is
    left out of every mean; its F1 counts 0, as scikit-learn's ``f1_score(zero_division=0)``."""
    ap, auroc = m.per_class_ap(labels, scores), m.per_class_auroc(labels, scores)
    values = {"map": m.nanmean(ap), **{f"map_{g}": v for g, v in m.group_means(ap, groups).items()},
              "auroc": m.nanmean(auroc), "f1": m.multilabel_f1(labels, scores, 0.5),
              "f1_tuned": m.multilabel_f1(labels, scores, thresholds)}
    return np.r_[[values[k] for k in MULTILABEL_KEYS], ap, auroc]


def multilabel_metrics(val_labels, val_logits, test_labels, test_logits, groups, class_names) -> dict:
    """summary.json of a multi-label run: test numbers with per-class thresholds tuned on val, per class
    AP / AUROC / support (test positives) / group / threshold, and val mAP. Scores are sigmoid(logits)."""
    val_scores, test_scores = sigmoid(val_logits), sigmoid(test_logits)
    thresholds = m.tune_thresholds(val_labels, val_scores)
    values = multilabel_numbers(test_labels, test_scores, groups, thresholds)
    k, c = len(MULTILABEL_KEYS), len(class_names)
    ap, auroc = values[k:k + c], values[k + c:]
    support = np.asarray(test_labels).sum(axis=0).astype(int)
    per_class = {name: {"ap": float(ap[i]), "auroc": float(auroc[i]), "support": int(support[i]),
                        "group": groups[i], "threshold": float(thresholds[i])} for i, name in enumerate(class_names)}
    return {"task": "multi-label",
            "test": dict(zip(MULTILABEL_KEYS, values[:k].tolist())),
            "per_class": per_class,
            "val": {"map": m.multilabel_map(val_labels, val_scores)},
            "groups": dict(zip(class_names, groups)),
            "calibration": {"test": calibration(test_labels, test_logits, "multi-label")}}
