"""Figures of a run and of a suite (PNG, matplotlib, no display needed), labelled for a paper.

Legends sit outside the axes, so they never cover data; every axis says what it measures.
"""
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

GROUP_COLOURS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
PUBLISHED_LABEL = "published (Holste et al. 2022, ResNet-50)"


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=150)
    plt.close(fig)


def training_curves(metrics: pd.DataFrame, best_epoch: int | None, loss_name: str, title: str) -> Figure:
    """The method's train loss and the validation cross-entropy on their own axes (they are different
    quantities: LDAM's scaled margins make its loss about ten times the cross-entropy), balanced accuracy
    and AUROC of train and val; the best epoch (by val bAcc) marked on each."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
    epochs = metrics["epoch"]
    panels = [(("train_loss",), f"train loss ({loss_name}, as optimised)", "Training loss"),
              (("val_loss",), "val cross-entropy", "Validation loss (plain cross-entropy)"),
              (("train_bacc", "val_bacc"), "balanced accuracy", "Balanced accuracy"),
              (("train_auroc", "val_auroc"), "macro AUROC (one-vs-rest)", "AUROC")]
    styles = {"train": ("-", "#1f77b4", "train (running, augmented batches)"), "val": ("--", "#ff7f0e",
                                                                                       "val (balanced-val)")}
    for ax, (columns, ylabel, panel_title) in zip(axes.flat, panels):
        for column in columns:
            style, colour, _ = styles[column.split("_")[0]]
            ax.plot(epochs, metrics[column], style, color=colour, marker="o", ms=3)
        if best_epoch:
            ax.axvline(best_epoch, color="0.3", ls=":", lw=1.2)
        ax.set(title=panel_title, xlabel="epoch", ylabel=ylabel)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls=style, color=colour, marker="o", ms=3, label=label)
               for style, colour, label in styles.values()]
    if best_epoch:
        handles.append(Line2D([], [], color="0.3", ls=":", label=f"best epoch ({best_epoch}, by val bAcc)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    fig.suptitle(title)
    return fig


def confusion(cm: np.ndarray, class_names: list[str], title: str) -> Figure:
    """Counts in the cells, colour by the fraction of the true class (rows: true class, with its n)."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    c = len(class_names)
    fig, ax = plt.subplots(figsize=(4 + 0.45 * c, 3 + 0.42 * c), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(cm.shape):
        colour = "white" if norm[i, j] > 0.55 else ("0.75" if cm[i, j] == 0 else "black")
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6, color=colour)
    ax.set_xticks(range(c), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(c), [f"{name} (n={n})" for name, n in zip(class_names, rows[:, 0])], fontsize=7)
    ax.set(xlabel="predicted class", ylabel="true class (n images)")
    ax.set_title(f"{title}\ncell: image count; colour: fraction of the true class", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class's images (row-normalised)")
    return fig


def per_class_bars(balanced_test: dict, n: dict[str, int], groups: dict[str, str], title: str) -> Figure:
    """Per-class recall (accuracy on the class's images) with its 95% interval, classes by group."""
    acc, ci = balanced_test["per_class"], balanced_test["per_class_ci95"]
    order = [c for g in GROUP_COLOURS for c in acc if groups[c] == g]
    values = np.array([acc[c] for c in order], dtype=float)
    low, high = (np.array([ci[c][k] for c in order], dtype=float) for k in (0, 1))
    yerr = np.vstack([values - low, high - values])
    fig, ax = plt.subplots(figsize=(12, 5), layout="constrained")
    x = np.arange(len(order))
    ax.bar(x, np.nan_to_num(values), color=[GROUP_COLOURS[groups[c]] for c in order])
    ax.errorbar(x, values, yerr=np.nan_to_num(yerr).clip(min=0), fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_xticks(x, [f"{c} (n={n[c]})" for c in order], rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="recall on balanced-test (per-class accuracy)", ylim=(0, 1.05), xlim=(-0.6, len(order) - 0.4))
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colour, label=g) for g, colour in GROUP_COLOURS.items()]
    handles.append(Line2D([], [], color="black", marker="|", ms=10, ls="", label="95% bootstrap interval"))
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


def suite_comparison(table: pd.DataFrame, title: str) -> Figure:
    """Test bAcc per method with its spread (and the published value, on real images), and balanced-test
    head / medium / tail accuracy per method; one legend under both panels."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    x = np.arange(len(table))
    ax1.bar(x, table["bacc"], color="0.55")  # grey: not one of the group colours of the right panel
    handles = [Patch(color="0.55", label="ours, test bAcc (point estimate)")]
    bars = _error_bars(ax1, x, table, "bacc")
    if "published_bacc" in table:
        ax1.scatter(x, table["published_bacc"], color="black", marker="D", s=30, zorder=3)
        handles.append(Line2D([], [], color="black", marker="D", ms=5, ls="", label=PUBLISHED_LABEL))
    ax1.set(ylabel="balanced accuracy on test (bAcc)", title="Test balanced accuracy per method")
    width = 0.27
    for i, g in enumerate(GROUP_COLOURS):
        ax2.bar(x + (i - 1) * width, table[g], width, color=GROUP_COLOURS[g])
        _error_bars(ax2, x + (i - 1) * width, table, g)
    handles += [Patch(color=colour, label=f"{g} classes, balanced-test") for g, colour in GROUP_COLOURS.items()]
    ax2.set(ylabel="mean per-class accuracy on balanced-test", title="Accuracy by group (balanced-test)")
    for ax in (ax1, ax2):
        ax.set_xticks(x, table["method"], rotation=45, ha="right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=handles + bars, loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    fig.suptitle(title)
    return fig
