"""Figures of a run and of a suite (PNG, matplotlib, no display needed)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GROUP_COLOURS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}


def training_curves(metrics: pd.DataFrame, path: Path) -> None:
    """Loss, balanced accuracy and AUROC over epochs, train and val (the replication report's Figure 1)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, title) in zip(axes, [("loss", "Loss"), ("bacc", "Balanced accuracy"), ("auroc", "AUROC")]):
        for split, style in (("train", "-"), ("val", "--")):
            ax.plot(metrics["epoch"], metrics[f"{split}_{key}"], style, marker="o", ms=3, label=split)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def confusion(cm: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class)."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def per_class_bars(accuracy: dict[str, float], groups: dict[str, str], path: Path, title: str) -> None:
    """Per-class accuracy, classes ordered by group, bars coloured head / medium / tail."""
    order = [c for g in GROUP_COLOURS for c in accuracy if groups[c] == g]
    values = [np.nan_to_num(accuracy[c]) for c in order]
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.bar(range(len(order)), values, color=[GROUP_COLOURS[groups[c]] for c in order])
    ax.set_xticks(range(len(order)), order, rotation=75, ha="right", fontsize=8)
    ax.set(ylabel="accuracy", ylim=(0, 1), title=title)
    ax.legend(handles=[Patch(color=colour, label=g) for g, colour in GROUP_COLOURS.items()])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def suite_comparison(table: pd.DataFrame, path: Path) -> None:
    """bAcc per method with its interval or spread, and head / medium / tail accuracy per method."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.5))
    x = np.arange(len(table))
    if "bacc_sd" in table:
        err = table["bacc_sd"].fillna(0).to_numpy()
        yerr = np.vstack([err, err])
    else:
        yerr = np.vstack([table["bacc"] - table.get("bacc_lo", table["bacc"]),
                          table.get("bacc_hi", table["bacc"]) - table["bacc"]]).clip(min=0)
    ax1.bar(x, table["bacc"], yerr=yerr, capsize=3, color="#4c72b0", label="ours")
    if "published_bacc" in table:
        ax1.scatter(x, table["published_bacc"], color="k", marker="_", s=200, zorder=3, label="paper")
    ax1.set_xticks(x, table["method"], rotation=60, ha="right", fontsize=8)
    ax1.set(ylabel="test balanced accuracy", title="bAcc per method")
    ax1.legend()
    width = 0.27
    for i, g in enumerate(GROUP_COLOURS):
        ax2.bar(x + (i - 1) * width, table[g], width, color=GROUP_COLOURS[g], label=g)
    ax2.set_xticks(x, table["method"], rotation=60, ha="right", fontsize=8)
    ax2.set(ylabel="balanced-test accuracy", title="Accuracy by group")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
