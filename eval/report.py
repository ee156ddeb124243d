"""python -m eval report RUN: the run's numbers with 95% bootstrap intervals, tables and figures.

This module is the single-label (paper's) report; a multi-label run's is eval.multilabel_report.

Everything comes from the saved predictions and metrics.csv, so a report needs
neither the model nor a GPU, and its point estimates equal what the run logged.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures
from . import metrics as m
from .predictions import read_predictions
from .runs import SYNTHETIC, describe, finished, is_synthetic, read_json, task_of_run
from .tasks import softmax


def _with_ci(metric, *arrays, n_boot, seed, clusters=None) -> dict:
    point, low, high = m.bootstrap_ci(metric, *arrays, n_boot=n_boot, seed=seed, clusters=clusters)
    return {"value": point, "ci95": [low, high]}


def numbers(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False, full: bool = True) -> dict:
    """summary.json of the report: balanced-test groups and test metrics, each with a 95% interval.

    ``full=False`` leaves out AUROC, MCC and the per-class intervals (the table needs none; AUROC is slow)."""
    meta = read_json(run / "config.json")
    names, groups = meta["class_names"], meta["groups"]
    c = len(names)
    bt = read_predictions(run / "predictions" / "balanced-test.parquet")
    test = read_predictions(run / "predictions" / "test.parquet")
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
        _, low, high = m.bootstrap_ci(lambda y, p: m.per_class_accuracy(y, p, c), bt.labels, bt.predicted, **bt_kw)
        out["balanced_test"]["per_class_ci95"] = dict(zip(names, np.c_[low, high].tolist()))
    out["groups"] = dict(zip(names, groups))
    out["images"] = {"balanced_test": len(bt.labels), "test": len(test.labels),
                     "balanced_test_per_class": dict(zip(names, np.bincount(bt.labels, minlength=c).tolist()))}
    return {**out, **about(run, meta, n_boot, seed, by_patient)}


def about(run: Path, meta: dict, n_boot: int, seed: int, by_patient: bool) -> dict:
    """The report summary's fields on how the intervals were drawn and what ran."""
    return {"bootstrap": {"resamples": n_boot, "seed": seed, "unit": "patient" if by_patient else "image",
                          "interval": "95% percentile"},
            "method": meta["config"]["method"], "dataset": meta["dataset"], "model": meta["config"]["model"],
            "seed": meta["config"]["seed"], "synthetic": is_synthetic(run)}


def per_class_table(run: Path, s: dict) -> pd.DataFrame:
    """One row per class: balanced-test accuracy (recall) with its interval, test F1 and AUROC."""
    meta = read_json(run / "config.json")
    names, c = meta["class_names"], len(meta["class_names"])
    test = read_predictions(run / "predictions" / "test.parquet")
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


def markdown_table(df: pd.DataFrame, undefined: str = "nan") -> str:
    """``df`` as a Markdown table, floats to 3 decimals and NaN as ``undefined``."""
    def cell(v) -> str:
        if isinstance(v, float):
            return undefined if np.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def fmt_ci(entry: dict) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def title(s: dict, run: Path) -> str:
    """'ce on nih-cxr-lt, model tiny, seed 0 (run ce)', marked when the pixels are synthetic."""
    meta = {"dataset": s["dataset"], "config": {"model": s["model"], "seed": s["seed"]}}
    return f"{s['method']} on {describe([meta])} (run {run.name})" + (f" - {SYNTHETIC}" if s["synthetic"] else "")


def bootstrap_note(b: dict, marks: str = "Brackets") -> str:
    return (f"{marks}: {b['interval']} bootstrap interval, {b['resamples']} resamples of "
            f"{b['unit']}s (seed {b['seed']}).")


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
             + bootstrap_note(s["bootstrap"]) + " " + scores_note(read_json(run / "config.json")))
    return page(run, s, headline, notes,
                ["Recall (accuracy of the class) on balanced-test with its 95% interval; F1 and AUROC on test.", "",
                 markdown_table(per_class)], figure_links)


def headline_table(heads: list[str], entries: list[dict]) -> list[str]:
    """The report's main table: one row, each number with its interval."""
    return ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads),
            "| " + " | ".join(map(fmt_ci, entries)) + " |"]


def page(run: Path, s: dict, headline: list[str], notes: str, per_class: list[str],
         figure_links: dict[str, str]) -> str:
    """report.md of either task: the title (with the bootstrap's unit), the main table and what its numbers are,
    the per-class section and the figures (file -> alt text)."""
    heading = f"# Report: {title(s, run)}; 95% intervals by {s['bootstrap']['unit']}"
    lines = [heading, "", *headline, "", notes, "", "## Per class", "", *per_class, "", "## Figures", ""]
    lines += [f"![{alt}]({name})" for name, alt in figure_links.items()]
    return "\n".join(lines) + "\n"


def training_curves(run: Path, out: Path, s: dict, best_epoch: int | None, task: str) -> dict[str, str]:
    """training_curves.png from metrics.csv, and its figure link; none for a run without a training history
    (tau-norm only rescales a trained classifier)."""
    history = pd.read_csv(run / "metrics.csv") if (run / "metrics.csv").exists() else pd.DataFrame()
    if not len(history):
        return {}
    loss = read_json(run / "config.json")["method"]["loss"]
    figures.save(figures.training_curves(history, best_epoch, loss, title(s, run), task), out / "training_curves.png")
    return {"training_curves.png": "training curves"}


def _figures(run: Path, out: Path, s: dict, best_epoch: int | None) -> dict[str, str]:
    """The report's figures; returns their links (file -> alt text)."""
    meta = read_json(run / "config.json")
    heading = title(s, run)
    links = training_curves(run, out, s, best_epoch, "single-label")
    bt = read_predictions(run / "predictions" / "balanced-test.parquet")
    cm = m.confusion_matrix(bt.labels, bt.predicted, len(meta["class_names"]))
    figures.save(figures.confusion(cm, meta["class_names"], f"{heading}\nbalanced-test"),
                 out / "confusion_balanced_test.png")
    bars = figures.per_class_bars(s["balanced_test"], s["images"]["balanced_test_per_class"], s["groups"],
                                  f"{heading}\n{bootstrap_note(s['bootstrap'], 'Error bars')}")
    figures.save(bars, out / "per_class_accuracy.png")
    return {**links, "confusion_balanced_test.png": "confusion matrix", "per_class_accuracy.png": "per-class recall"}


def report(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False) -> Path:
    """Writes the report into RUN/report/, or RUN/report-by-patient/; returns that dir."""
    run = finished(run)
    steps = numbers, per_class_table, _figures, markdown
    if task_of_run(run) == "multi-label":
        from . import multilabel_report as ml

        steps = ml.numbers, ml.per_class_table, ml.write_figures, ml.markdown
    numbers_of, per_class_of, figures_of, markdown_of = steps
    logged = read_json(run / "summary.json")
    out = run / ("report-by-patient" if by_patient else "report")  # by-image and by-patient reports side by side
    out.mkdir(exist_ok=True)
    s = numbers_of(run, n_boot, seed, by_patient)
    (out / "summary.json").write_text(json.dumps(s, indent=1))
    per_class = per_class_of(run, s)
    per_class.to_csv(out / "per_class.csv", index=False)
    links = figures_of(run, out, s, logged.get("best_epoch"))
    (out / "report.md").write_text(markdown_of(run, s, per_class, links))
    return out
