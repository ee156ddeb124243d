"""A single-label run's report (the paper's numbers): summary.json, the per-class table, the figures, report.md."""
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures
from . import metrics as m
from .intervals import NAME, NOTE, clopper_pearson
from .report_page import about, bootstrap_note, headline_table, markdown_table, page, short_title, training_curves
from .runs import run_meta, run_predictions
from .tasks import softmax


def _with_ci(metric, *arrays, n_boot, seed, clusters=None) -> dict:
    point, low, high = m.bootstrap_ci(metric, *arrays, n_boot=n_boot, seed=seed, clusters=clusters)
    return {"value": point, "ci95": [low, high]}


def numbers(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False, full: bool = True) -> dict:
    """summary.json of the report: balanced-test groups and test metrics, each with a 95% interval.

    ``full=False`` leaves out AUROC, MCC and the per-class intervals (the table needs none; AUROC is slow)."""
    meta = run_meta(run)
    names, groups = meta["class_names"], meta["groups"]
    c = len(names)
    bt = run_predictions(run, "balanced-test")
    test = run_predictions(run, "test")
    kw = dict(n_boot=n_boot, seed=seed)
    bt_kw = dict(kw, clusters=bt.patients if by_patient else None)
    t_kw = dict(kw, clusters=test.patients if by_patient else None)
    out = {"balanced_test": {g: _with_ci(lambda y, p, g=g: m.group_accuracy(y, p, groups)[g], bt.labels,
                                         bt.predicted, **bt_kw) for g in ("head", "medium", "tail", "avg")},
           "test": {"mf1": _with_ci(lambda y, p: m.macro_f1(y, p, c), test.labels, test.predicted, **t_kw),
                    "bacc": _with_ci(lambda y, p: m.balanced_accuracy(y, p, c), test.labels, test.predicted, **t_kw)}}
    per_class = m.per_class_accuracy(bt.labels, bt.predicted, c)
    out["balanced_test"]["per_class"] = dict(zip(names, per_class.tolist()))
    if full:
        out["test"]["auroc"] = _with_ci(lambda y, s: m.macro_auroc(y, s), test.labels, softmax(test.logits), **t_kw)
        out["test"]["mcc"] = _with_ci(lambda y, p: m.mcc(y, p, c), test.labels, test.predicted, **t_kw)
        cm = m.confusion_matrix(bt.labels, bt.predicted, c)
        low, high = clopper_pearson(np.diag(cm), cm.sum(axis=1))
        out["balanced_test"]["per_class_ci95"] = dict(zip(names, np.c_[low, high].tolist()))
        out["balanced_test"]["per_class_interval"] = NAME
    out["groups"] = dict(zip(names, groups))
    out["images"] = {"balanced_test": len(bt.labels), "test": len(test.labels),
                     "balanced_test_per_class": dict(zip(names, np.bincount(bt.labels, minlength=c).tolist()))}
    return {**out, **about(run, meta, n_boot, seed, by_patient)}


def per_class_table(run: Path, s: dict) -> pd.DataFrame:
    """One row per class: balanced-test accuracy (recall) with its interval, test F1 and AUROC."""
    meta = run_meta(run)
    names, c = meta["class_names"], len(meta["class_names"])
    test = run_predictions(run, "test")
    cm = m.confusion_matrix(test.labels, test.predicted, c)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    f1 = np.divide(2 * tp, support + predicted, out=np.full(c, np.nan), where=(support + predicted) > 0)
    probs = softmax(test.logits)
    bt = s["balanced_test"]
    return pd.DataFrame({
        "class": names, "group": meta["groups"], "train_images": meta["train_counts"],
        "balanced_test_images": [s["images"]["balanced_test_per_class"][k] for k in names],
        "balanced_test_recall": [bt["per_class"][k] for k in names],
        "recall_lo": [bt["per_class_ci95"][k][0] for k in names],
        "recall_hi": [bt["per_class_ci95"][k][1] for k in names],
        "test_images": support, "test_f1": f1,
        "test_auroc": [m.binary_auroc(test.labels == k, probs[:, k]) for k in range(c)]})


def scores_note(meta: dict) -> str:
    """What the probabilities behind AUROC are; for a cosine classifier (the LDAM family), that its logits
    carry the scale its loss used, so its softmax is on the same footing as any other method's."""
    note = "AUROC ranks the softmax of the saved logits."
    method = meta.get("method", {})
    if method.get("head") == "normed" and not meta["config"].get("paper_ldam"):
        note += (f" This run's classifier is a cosine one: its logits are s x cosine with s = "
                 f"{method.get('loss_params', {}).get('s', 30)}, the scale its loss used, so its softmax is a "
                 "probability like the other methods'.")
    return note


def markdown(run: Path, s: dict, per_class: pd.DataFrame, figure_links: dict[str, str]) -> str:
    bt, t, n = s["balanced_test"], s["test"], s["images"]
    headline = headline_table(["balanced-test: Head", "Medium", "Tail", "Avg", "test: mF1", "bAcc", "AUROC", "MCC"],
                              [bt[g] for g in ("head", "medium", "tail", "avg")]
                              + [t[k] for k in ("mf1", "bacc", "auroc", "mcc")])
    notes = (f"Head, Medium, Tail: mean per-class accuracy (recall) of the group's classes on balanced-test "
             f"({n['balanced_test']} images); Avg: the mean of the three. mF1 (macro F1), bAcc (balanced "
             f"accuracy), AUROC (macro one-vs-rest) and MCC: on test ({n['test']} images). "
             + bootstrap_note(s["bootstrap"]) + " " + scores_note(run_meta(run)))
    return page(run, s, headline, notes,
                [f"Recall (accuracy of the class) on balanced-test with its 95% {NAME} interval; F1 and AUROC on "
                 f"test. Recall_lo, recall_hi: the {NOTE}.", "",
                 markdown_table(per_class)], figure_links)


def write_figures(run: Path, out: Path, s: dict, best_epoch: int | None, counts: bool = False) -> dict[str, str]:
    """The report's figures (``counts``: the confusion matrix's cells in images, not percent); returns their
    links (file -> caption)."""
    meta = run_meta(run)
    links = training_curves(run, out, s, best_epoch, "single-label")
    bt = run_predictions(run, "balanced-test")
    cm = m.confusion_matrix(bt.labels, bt.predicted, len(meta["class_names"]))
    by_frequency = np.argsort(-np.asarray(meta["train_counts"]), kind="stable")
    figures.save(figures.confusion(cm, meta["class_names"], short_title(s, "confusion matrix, balanced-test"),
                                   by_frequency, counts), out / "confusion_balanced_test.png")
    bars = figures.per_class_bars(s["balanced_test"], s["images"]["balanced_test_per_class"], s["groups"],
                                  short_title(s, "per-class recall, balanced-test"),
                                  interval=f"95% {NAME} interval")
    figures.save(bars, out / "per_class_accuracy.png")
    return {**links,
            "confusion_balanced_test.png": "confusion matrix on balanced-test, rows and columns by training "
                                           "frequency (most first), colour row-normalised, cells "
                                           + ("image counts" if counts else "percent of the true class")
                                           + ", empty cells blank",
            "per_class_accuracy.png": f"per-class recall on balanced-test with its 95% {NAME} interval, classes "
                                      "by group"}
