"""python -m eval report RUN: the run's numbers with 95% bootstrap intervals, tables and figures.

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
from .summary import softmax


def _with_ci(metric, *arrays, n_boot, seed, clusters=None) -> dict:
    point, low, high = m.bootstrap_ci(metric, *arrays, n_boot=n_boot, seed=seed, clusters=clusters)
    return {"value": point, "ci95": [low, high]}


def numbers(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False, ranking: bool = True) -> dict:
    """summary.json of the report: balanced-test groups and test metrics, each with a 95% interval.

    ``ranking=False`` leaves out AUROC and MCC (the table needs neither; AUROC is the slow one)."""
    meta = json.loads((run / "config.json").read_text())
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
    if ranking:
        out["test"]["auroc"] = _with_ci(lambda y, s: m.macro_auroc(y, s), test.labels, softmax(test.logits), **t_kw)
        out["test"]["mcc"] = _with_ci(lambda y, p: m.mcc(y, p, c), test.labels, test.predicted, **t_kw)
    out["balanced_test"]["per_class"] = dict(zip(names, m.per_class_accuracy(bt.labels, bt.predicted, c).tolist()))
    out["groups"] = dict(zip(names, groups))
    out["bootstrap"] = {"resamples": n_boot, "seed": seed, "unit": "patient" if by_patient else "image"}
    out["method"] = meta["config"]["method"]
    return out


def per_class_table(run: Path) -> pd.DataFrame:
    meta = json.loads((run / "config.json").read_text())
    names, c = meta["class_names"], len(meta["class_names"])
    bt = read_predictions(run / "predictions" / "balanced-test.parquet")
    test = read_predictions(run / "predictions" / "test.parquet")
    cm = m.confusion_matrix(test.labels, test.predicted, c)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    f1 = np.divide(2 * tp, support + predicted, out=np.full(c, np.nan), where=(support + predicted) > 0)
    probs = softmax(test.logits)
    return pd.DataFrame({
        "class": names, "group": meta["groups"], "train_images": meta["train_counts"],
        "balanced_test_support": np.bincount(bt.labels, minlength=c),
        "balanced_test_accuracy": m.per_class_accuracy(bt.labels, bt.predicted, c),
        "test_support": support, "test_f1": f1,
        "test_auroc": [m.binary_auroc(test.labels == k, probs[:, k]) for k in range(c)]})


def markdown_table(df: pd.DataFrame) -> str:
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _fmt(entry: dict) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(run: Path, s: dict, per_class: pd.DataFrame, has_curves: bool) -> str:
    bt, t = s["balanced_test"], s["test"]
    lines = [f"# Report: {s['method']} ({run.name})", "",
             f"95% intervals: percentile bootstrap, {s['bootstrap']['resamples']} resamples of "
             f"{s['bootstrap']['unit']}s, seed {s['bootstrap']['seed']}.", "",
             "| balanced-test Head | Medium | Tail | Avg | test mF1 | bAcc | AUROC | MCC |",
             "|---|---|---|---|---|---|---|---|",
             "| " + " | ".join(_fmt(bt[g]) for g in ("head", "medium", "tail", "avg")) + " | "
             + " | ".join(_fmt(t[k]) for k in ("mf1", "bacc", "auroc", "mcc")) + " |", "",
             "## Per class", "", markdown_table(per_class), "", "## Figures", ""]
    if has_curves:
        lines.append("![training curves](training_curves.png)")
    lines += ["![confusion matrix](confusion_balanced_test.png)", "![per-class accuracy](per_class_accuracy.png)"]
    return "\n".join(lines) + "\n"


def report(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False) -> Path:
    run = Path(run)
    if not (run / "summary.json").exists():
        raise FileNotFoundError(f"{run}: no summary.json; the run has not finished (rerun its fit command)")
    out = run / "report"
    out.mkdir(exist_ok=True)
    s = numbers(run, n_boot, seed, by_patient)
    (out / "summary.json").write_text(json.dumps(s, indent=1))
    per_class = per_class_table(run)
    per_class.to_csv(out / "per_class.csv", index=False)
    has_curves = (run / "metrics.csv").exists() and len(pd.read_csv(run / "metrics.csv")) > 0
    if has_curves:
        figures.training_curves(pd.read_csv(run / "metrics.csv"), out / "training_curves.png")
    meta = json.loads((run / "config.json").read_text())
    bt = read_predictions(run / "predictions" / "balanced-test.parquet")
    cm = m.confusion_matrix(bt.labels, bt.predicted, len(meta["class_names"]))
    figures.confusion(cm, meta["class_names"], out / "confusion_balanced_test.png",
                      f"{s['method']}: balanced-test, row-normalised")
    figures.per_class_bars(s["balanced_test"]["per_class"], s["groups"], out / "per_class_accuracy.png",
                           f"{s['method']}: balanced-test accuracy per class")
    (out / "report.md").write_text(markdown(run, s, per_class, has_curves))
    return out
