"""python -m eval report RUN on a multi-label run: the CXR-LT numbers with 95% bootstrap intervals, the
per-class AP / AUROC table and the figures (training curves, per-class AP, precision-recall curves).

As the single-label report, everything comes from the saved predictions and metrics.csv; the per-class
thresholds of F1@tuned are tuned again on the saved val predictions, so every point estimate equals
summary.json's.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures
from . import metrics as m
from .intervals import NAME, clopper_pearson
from .report_page import about, bootstrap_note, headline_table, markdown_table, page, short_title, training_curves
from .runs import run_meta, run_predictions
from .summary import GROUPS_NOTE, RESAMPLE_NOTE, MULTILABEL_HEADS, MULTILABEL_KEYS, multilabel_numbers
from .tasks import sigmoid

UNDEFINED = "—"  # the per-class table's cell of an AP or AUROC a class does not have (no positive in test)


def numbers(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False) -> dict:
    """summary.json of the report: the test numbers of MULTILABEL_KEYS and each class's AP and AUROC, each
    with a 95% interval (one bootstrap: a resample's numbers all come from the same images)."""
    meta = run_meta(run)
    names, groups = meta["class_names"], meta["groups"]
    val = run_predictions(run, "val")
    test = run_predictions(run, "test")
    thresholds = m.tune_thresholds(val.labels, sigmoid(val.logits))  # fixed: only the test images are resampled
    point, low, high = m.bootstrap_ci(lambda y, p: multilabel_numbers(y, p, groups, thresholds), test.labels,
                                      sigmoid(test.logits), n_boot=n_boot, seed=seed,
                                      clusters=test.patients if by_patient else None)

    def entry(i: int) -> dict:
        return {"value": float(point[i]), "ci95": [float(low[i]), float(high[i])]}

    k, c = len(MULTILABEL_KEYS), len(names)
    support = (test.labels > 0).sum(axis=0)  # an ignored label (-1) is no positive
    found = ((test.labels > 0) & (sigmoid(test.logits) >= thresholds)).sum(axis=0)
    recall, (r_low, r_high) = found / np.maximum(support, 1), clopper_pearson(found, support)
    per_class = {name: {"ap": entry(k + i), "auroc": entry(k + c + i), "support": int(support[i]),
                        "recall_tuned": {"value": float(recall[i]) if support[i] else float("nan"),
                                         "ci95": [float(r_low[i]), float(r_high[i])]},
                        "group": groups[i], "threshold": float(thresholds[i])} for i, name in enumerate(names)}
    return {"task": "multi-label", "test": {key: entry(i) for i, key in enumerate(MULTILABEL_KEYS)},
            "per_class": per_class, "groups": dict(zip(names, groups)),
            "images": {"val": len(val.labels), "test": len(test.labels)}, "per_class_interval": NAME,
            **about(run, meta, n_boot, seed, by_patient)}


def per_class_table(run: Path, s: dict) -> pd.DataFrame:
    """One row per class: group, training positives, test positives, AP with its interval, AUROC, threshold."""
    meta = run_meta(run)
    rows = [s["per_class"][name] for name in meta["class_names"]]
    return pd.DataFrame({
        "class": meta["class_names"], "group": meta["groups"], "train_positives": meta["train_counts"],
        "test_positives": [r["support"] for r in rows], "test_ap": [r["ap"]["value"] for r in rows],
        "ap_lo": [r["ap"]["ci95"][0] for r in rows], "ap_hi": [r["ap"]["ci95"][1] for r in rows],
        "test_auroc": [r["auroc"]["value"] for r in rows], "val_threshold": [r["threshold"] for r in rows],
        "recall_tuned": [r["recall_tuned"]["value"] for r in rows],
        "recall_lo": [r["recall_tuned"]["ci95"][0] for r in rows],
        "recall_hi": [r["recall_tuned"]["ci95"][1] for r in rows]})


def column_notes(s: dict) -> str:
    """What each number of the main table is, and on which images."""
    n, per_class = s["images"], s["per_class"]
    defined = sum(r["support"] > 0 for r in per_class.values())
    return (f"All on test ({n['test']} images), scores are the sigmoid of the saved logits. mAP: macro average "
            f"precision over the classes with a positive in test ({defined} of {len(per_class)}; a class without "
            f"one has no AP and is left out). Head, Medium, Tail mAP: the mean AP of the group's classes "
            f"({GROUPS_NOTE}); Avg mAP: the mean of the three. AUROC: the mean over classes of each "
            f"class's AUROC. F1@0.5: macro F1 with every class thresholded at 0.5; F1@tuned: at per-class "
            f"thresholds tuned for F1 on val ({n['val']} images); both count every class, one without a "
            f"positive in test as 0. A bootstrap resample averages AP and AUROC over the classes it has a "
            f"positive of; the thresholds stay those tuned on val. {RESAMPLE_NOTE}.")


def markdown(run: Path, s: dict, per_class: pd.DataFrame, figure_links: dict[str, str]) -> str:
    headline = headline_table([MULTILABEL_HEADS[k] for k in MULTILABEL_KEYS], [s["test"][k] for k in MULTILABEL_KEYS])
    intro = ("AP (with its 95% interval) and AUROC on test; the F1 threshold tuned on val (0.5 for a class without "
             f"a positive in val). {UNDEFINED}: not defined (AP needs a positive in test, AUROC a positive and a "
             f"negative). Recall_tuned: the share of the class's test positives found at its tuned threshold; "
             f"recall_lo, recall_hi: its 95% {NAME} interval.")
    return page(run, s, headline, column_notes(s) + " " + bootstrap_note(s["bootstrap"]),
                [intro, "", markdown_table(per_class, UNDEFINED)], figure_links)


def write_figures(run: Path, out: Path, s: dict, best_epoch: int | None, counts: bool = False) -> dict[str, str]:
    """The report's figures; returns their links (file -> caption). ``counts``: for the single-label report's
    confusion matrix (none here)."""
    meta = run_meta(run)
    links = training_curves(run, out, s, best_epoch, "multi-label")
    pc = s["per_class"]
    test = run_predictions(run, "test")
    counted = test.labels >= 0
    prevalence = ((test.labels > 0) & counted).sum(axis=0) / np.maximum(counted.sum(axis=0), 1)
    bars = {"per_class": {k: r["ap"]["value"] for k, r in pc.items()},
            "per_class_ci95": {k: r["ap"]["ci95"] for k, r in pc.items()}}
    figures.save(figures.per_class_bars(bars, {k: r["support"] for k, r in pc.items()}, s["groups"],
                                        short_title(s, "per-class AP, test"),
                                        ylabel="average precision on test (AP; n: test positives)",
                                        prevalence=dict(zip(meta["class_names"], prevalence))),
                 out / "per_class_ap.png")
    examples = figures.pr_examples(test.labels, meta["groups"])
    figures.save(figures.pr_curves(test.labels, sigmoid(test.logits), examples, meta["class_names"],
                                   short_title(s, "precision-recall, test")), out / "pr_curves.png")
    return {**links,
            "per_class_ap.png": "per-class AP on test with its 95% bootstrap interval, classes by group, each "
                                "class's prevalence marked (the AP of a random ranking)",
            "pr_curves.png": "precision-recall curves on test of the class of each group with the most test "
                             "positives, each with its prevalence (the precision of a random ranking) dotted"}
