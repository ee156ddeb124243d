"""Figures of a run and of a suite (PNG and vector PDF, matplotlib, no display needed), labelled for a paper.

Legends sit outside the axes, so they never cover data; every axis says what it measures; titles are short (the
report's captions.md holds the run's details).
"""
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from shards.atomic import atomic_file  # noqa: E402

from .metrics import average_precision, precision_recall  # noqa: E402

GROUP_COLOURS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
PUBLISHED_LABEL = "published (Holste et al. 2022, ResNet-50)"


def save(fig: Figure, path: Path) -> None:
    """``path`` (PNG at 150 dpi) and the same figure as vector PDF beside it."""
    path = Path(path)
    try:
        for out in (path, path.with_suffix(".pdf")):
            with atomic_file(out) as f:
                fig.savefig(f, dpi=150, format=out.suffix[1:])
    finally:
        plt.close(fig)


def wrapped(text: str, width: int) -> str:
    """Each line of ``text`` broken at spaces into lines of at most ``width`` characters: a long method or run
    name would otherwise run off the figure (the layout moves text, it never wraps it)."""
    return "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in text.split("\n"))


# what the curves of each task show: the selection metric, the plain validation loss, AUROC, the val split
CURVES = {
    "single-label": {"select": "bacc", "short": "bAcc", "select_label": "balanced accuracy",
                     "select_title": "Balanced accuracy", "val_loss": "val cross-entropy",
                     "val_loss_title": "Validation loss (plain cross-entropy)", "auroc": "macro AUROC (one-vs-rest)",
                     "val": "val (balanced-val)"},
    "multi-label": {"select": "map", "short": "mAP", "select_label": "mean average precision (mAP)",
                    "select_title": "Mean average precision", "val_loss": "val binary cross-entropy",
                    "val_loss_title": "Validation loss (plain binary cross-entropy)",
                    "auroc": "macro AUROC (per class)", "val": "val"},
}


def training_curves(metrics: pd.DataFrame, best_epoch: int | None, loss_name: str, title: str,
                    task: str = "single-label") -> Figure:
    """The method's train loss and the plain validation loss on their own axes (they are different
    quantities: LDAM's scaled margins make its loss about ten times the cross-entropy), the selection metric
    (balanced accuracy, or mAP for multi-label) and AUROC of train and val; the best epoch marked on each."""
    k = CURVES[task]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
    epochs = metrics["epoch"]
    panels = [(("train_loss",), f"train loss ({loss_name}, as optimised)", "Training loss"),
              (("val_loss",), k["val_loss"], k["val_loss_title"]),
              ((f"train_{k['select']}", f"val_{k['select']}"), k["select_label"], k["select_title"]),
              (("train_auroc", "val_auroc"), k["auroc"], "AUROC")]
    styles = {"train": ("-", "#1f77b4", "train (running, augmented batches)"), "val": ("--", "#ff7f0e", k["val"])}
    for ax, (columns, ylabel, panel_title) in zip(axes.flat, panels):
        for column in columns:
            style, colour, _ = styles[column.split("_")[0]]
            ax.plot(epochs, metrics[column], style, color=colour, marker="o", ms=3)
        if best_epoch:
            ax.axvline(best_epoch, color="0.3", ls=":", lw=1.2)
        ax.set(title=panel_title, xlabel="epoch", ylabel=wrapped(ylabel, 40))  # 40: about the panel's height
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls=style, color=colour, marker="o", ms=3, label=label)
               for style, colour, label in styles.values()]
    if best_epoch:
        handles.append(Line2D([], [], color="0.3", ls=":", label=f"best epoch ({best_epoch}, by val {k['short']})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    fig.suptitle(wrapped(title, 110))  # 110 characters of 12 pt span about the figure's 11 inches
    return fig


def confusion(cm: np.ndarray, class_names: list[str], title: str, order=None, counts: bool = False) -> Figure:
    """Row-normalised: colour and cell text are the percentage of the true class's images (``counts``: the image
    count instead); rows and columns in ``order`` (the reports: by training frequency, most first); an empty cell
    is left blank, so the few confusions that happen stand out even at 20 classes."""
    order = np.arange(len(class_names)) if order is None else np.asarray(order)
    cm, class_names = np.asarray(cm)[np.ix_(order, order)], [class_names[k] for k in order]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    c = len(class_names)
    fig, ax = plt.subplots(figsize=(4 + 0.45 * c, 3 + 0.42 * c), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(cm)):
        text = str(cm[i, j]) if counts else f"{100 * norm[i, j]:.0f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.55 else "black")
    ax.set_xticks(range(c), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(c), [f"{name} (n={n})" for name, n in zip(class_names, rows[:, 0])], fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class (n images)")
    cell = "image count" if counts else "% of the true class's images"
    # about 14 characters of 9 pt per inch of the axes' width
    ax.set_title(wrapped(f"{title}\ncell: {cell}; blank: none", int(14 * (1.5 + 0.45 * c))), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class's images (row-normalised)")
    return fig


def per_class_bars(balanced_test: dict, n: dict[str, int], groups: dict[str, str], title: str,
                   ylabel: str = "recall on balanced-test (per-class accuracy)",
                   interval: str = "95% bootstrap interval", prevalence: dict[str, float] | None = None) -> Figure:
    """A per-class number with its 95% interval (``interval`` names it), classes by group: recall (accuracy on
    the class's images) by default, or another (``ylabel`` names it), given as ``{"per_class": ...,
    "per_class_ci95": ...}``; ``prevalence`` marks each class's share of positives (the AP of a random ranking). A
    class whose number is undefined (NaN: no image of it) is marked "n/a", not drawn as a bar of 0."""
    acc, ci = balanced_test["per_class"], balanced_test["per_class_ci95"]
    order = [c for g in GROUP_COLOURS for c in acc if groups[c] == g]
    values = np.array([acc[c] for c in order], dtype=float)
    low, high = (np.array([ci[c][k] for c in order], dtype=float) for k in (0, 1))
    yerr = np.vstack([values - low, high - values])
    fig, ax = plt.subplots(figsize=(12, 5), layout="constrained")
    x = np.arange(len(order))
    ax.bar(x, np.nan_to_num(values), color=[GROUP_COLOURS[groups[c]] for c in order])
    ax.errorbar(x, values, yerr=np.nan_to_num(yerr).clip(min=0), fmt="none", ecolor="black", capsize=3, lw=1)
    for k in np.flatnonzero(np.isnan(values)):
        ax.text(k, 0.02, "n/a", ha="center", va="bottom", rotation=90, fontsize=8, color="0.3")
    if prevalence is not None:
        ax.scatter(x, [prevalence[c] for c in order], marker="_", s=250, color="black", lw=2, zorder=3)
    ax.set_xticks(x, [f"{c} (n={n[c]})" for c in order], rotation=60, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, ylim=(0, 1.05), xlim=(-0.6, len(order) - 0.4))
    ax.set_title(wrapped(title, 140), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colour, label=g) for g, colour in GROUP_COLOURS.items()]
    handles.append(Line2D([], [], color="black", marker="|", ms=10, ls="", label=interval))
    if prevalence is not None:
        handles.append(Line2D([], [], color="black", marker="_", ms=12, mew=2, ls="",
                              label="prevalence (AP of a random ranking)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def _error_bars(ax, x, table: pd.DataFrame, key: str) -> list:
    """Error bars of one column: sd over seeds where a row has several, else its interval; their legend handles."""
    handles = []
    sd = table[f"{key}_sd"] if f"{key}_sd" in table else pd.Series(np.nan, index=table.index)
    lo = table[f"{key}_lo"] if f"{key}_lo" in table else pd.Series(np.nan, index=table.index)
    hi = table[f"{key}_hi"] if f"{key}_hi" in table else pd.Series(np.nan, index=table.index)
    v = table[key].to_numpy(dtype=float)
    for rows, err, label in ((sd.notna().to_numpy(), np.vstack([sd, sd]), "± sd over seeds"),
                             (lo.notna().to_numpy(), np.vstack([v - lo, hi - v]).clip(min=0),
                              "95% bootstrap interval")):
        if rows.any():
            ax.errorbar(x[rows], v[rows], yerr=err[:, rows], fmt="none", ecolor="black", capsize=3, lw=1)
            handles.append(Line2D([], [], color="black", marker="|", ms=10, ls="", label=f"error bar: {label}"))
    return handles


def pr_examples(labels, groups: list[str]) -> dict[str, int]:
    """The example class of each group for precision-recall curves: the one with the most positives in
    ``labels`` (multi-hot), the first on ties; a group none of whose classes has a positive is left out."""
    positives, g = np.asarray(labels).sum(axis=0), np.asarray(groups)
    return {name: int(np.argmax(np.where(g == name, positives, -1))) for name in GROUP_COLOURS
            if (positives[g == name] > 0).any()}


def pr_curves(labels, scores, examples: dict[str, int], class_names: list[str], title: str) -> Figure:
    """One precision-recall step curve per group example (``pr_examples``), in its group's colour, with its
    AP and positives in the legend, and its prevalence (the precision of a random ranking) as a dotted line."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")  # wide enough for a run's title
    for group, c in examples.items():
        precision, recall = precision_recall(labels[:, c], scores[:, c])
        ap = average_precision(labels[:, c], scores[:, c])
        # precision[k] holds from recall[k-1] to recall[k]: the area under these steps is the AP
        ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", color=GROUP_COLOURS[group],
                label=f"{class_names[c]} ({group}, AP {ap:.3f}, n={int(labels[:, c].sum())})")
        counted = labels[:, c] >= 0
        ax.axhline((labels[counted, c] > 0).mean(), color=GROUP_COLOURS[group], ls=":", lw=1.2,
                   label=f"{class_names[c]}: prevalence {(labels[counted, c] > 0).mean():.3f} (random ranking)")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05))
    ax.set_title(wrapped(title, 100), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    return fig


# what the comparison figure shows per task: the main column on the left, the group columns on the right
COMPARISON = {
    "single-label": {"key": "bacc", "bar": "ours, test bAcc (point estimate)",
                     "ylabel": "balanced accuracy on test (bAcc)", "title": "Test balanced accuracy per method",
                     "groups": ("head", "medium", "tail"), "group": "{} classes, balanced-test",
                     "group_ylabel": "mean per-class accuracy on balanced-test",
                     "group_title": "Accuracy by group (balanced-test)"},
    "multi-label": {"key": "map", "bar": "test mAP (point estimate)", "ylabel": "mean average precision on test (mAP)",
                    "title": "Test mAP per method", "groups": ("map_head", "map_medium", "map_tail"),
                    "group": "{} classes, test", "group_ylabel": "mAP of the group's classes on test",
                    "group_title": "mAP by group (test)"},
}


def suite_comparison(table: pd.DataFrame, title: str) -> Figure:
    """Test bAcc (multi-label: mAP) per method with its spread (and the published value, on real
    single-label images), and head / medium / tail accuracy on balanced-test (multi-label: mAP on test) per
    method; one legend under both panels."""
    k = COMPARISON[table.attrs.get("task", "single-label")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    x = np.arange(len(table))
    ax1.bar(x, table[k["key"]], color="0.55")  # grey: not one of the group colours of the right panel
    handles = [Patch(color="0.55", label=k["bar"])]
    bars = _error_bars(ax1, x, table, k["key"])
    if "published_bacc" in table:
        ax1.scatter(x, table["published_bacc"], color="black", marker="D", s=30, zorder=3)
        handles.append(Line2D([], [], color="black", marker="D", ms=5, ls="", label=PUBLISHED_LABEL))
    ax1.set(ylabel=k["ylabel"], title=k["title"])
    width = 0.27
    for i, (g, column) in enumerate(zip(GROUP_COLOURS, k["groups"])):
        ax2.bar(x + (i - 1) * width, table[column], width, color=GROUP_COLOURS[g])
        _error_bars(ax2, x + (i - 1) * width, table, column)
    handles += [Patch(color=colour, label=k["group"].format(g)) for g, colour in GROUP_COLOURS.items()]
    ax2.set(ylabel=k["group_ylabel"], title=k["group_title"])
    for ax in (ax1, ax2):
        ax.set_xticks(x, table["method"], rotation=45, ha="right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=handles + bars, loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    fig.suptitle(wrapped(title, 130))
    return fig


def reliability_diagram(curves: dict[str, tuple], title: str) -> Figure:
    """Accuracy against mean confidence per bin for each curve (label -> (counts, confidence, accuracy)), the
    diagonal of perfect calibration, and the image count per bin below."""
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.5, 6), height_ratios=(3, 1), sharex=True, layout="constrained")
    ax.plot([0, 1], [0, 1], ls=":", color="0.4", label="perfectly calibrated")
    bins = len(next(iter(curves.values()))[0])
    centres = (np.arange(bins) + 0.5) / bins
    for (label, (counts, conf, acc)), colour in zip(curves.items(), ("#1f77b4", "#ff7f0e")):
        ax.plot(conf, acc, marker="o", ms=4, color=colour, label=label)
        ax_n.bar(centres, counts, width=1 / bins, color=colour, alpha=0.5, label=label)
    ax.set(ylabel="accuracy (fraction correct / positive)", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(wrapped(title, 60), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax_n.set(xlabel="confidence (mean predicted probability of the bin)", ylabel="images")
    ax_n.set_yscale("symlog")
    return fig
