"""What both tasks' reports share: summary.json's provenance fields, report.md's pieces and the training curves."""
from pathlib import Path

import numpy as np
import pandas as pd

from shards.atomic import write_atomic
from shards.errors import UsageError

from . import calibration_report, figures, studies, subgroups
from .intervals import NAME as INTERVAL_NAME
from .runs import SYNTHETIC, describe, is_synthetic, read_json


def about(run: Path, meta: dict, n_boot: int, seed: int, by_patient: bool) -> dict:
    """The report summary's fields on how the intervals were drawn and what ran."""
    return {"bootstrap": {"resamples": n_boot, "seed": seed, "unit": "patient" if by_patient else "image",
                          "interval": "95% percentile"},
            "method": meta["config"]["method"], "dataset": meta["dataset"], "model": meta["config"]["model"],
            "seed": meta["config"]["seed"], "synthetic": is_synthetic(run),
            "pretrained_leakage": meta.get("pretrained_leakage")}


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


def short_title(s: dict, what: str) -> str:
    """A figure's title: the method and what the figure shows (the run's details go to captions.md), marked
    when the pixels are synthetic, so such a figure never passes for a real result."""
    return f"{s['method']}: {what}" + (" - SYNTHETIC pixels" if s["synthetic"] else "")


def write_captions(run: Path, out: Path, s: dict, links: dict[str, str]) -> None:
    """captions.md: each figure (PNG and PDF) with what it shows and the run it comes from."""
    lines = [f"# Figures of {title(s, run)}", ""]
    lines += [f"- `{name}` (vector: `{Path(name).with_suffix('.pdf')}`): {caption}." for name, caption in links.items()]
    lines += ["", bootstrap_note(s["bootstrap"], "Bootstrap intervals") + " Per-class recall intervals: 95% "
              f"{INTERVAL_NAME}."]
    write_atomic(out / "captions.md", "\n".join(lines) + "\n")


def bootstrap_note(b: dict, marks: str = "Brackets") -> str:
    return (f"{marks}: {b['interval']} bootstrap interval, {b['resamples']} resamples of "
            f"{b['unit']}s (seed {b['seed']}).")


def headline_table(heads: list[str], entries: list[dict]) -> list[str]:
    """The report's main table: one row, each number with its interval."""
    return ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads),
            "| " + " | ".join(map(fmt_ci, entries)) + " |"]


def page(run: Path, s: dict, headline: list[str], notes: str, per_class: list[str],
         figure_links: dict[str, str]) -> str:
    """report.md of either task: the title (with the bootstrap's unit), the main table and what its numbers are,
    the per-class section and the figures (file -> alt text)."""
    heading = f"# Report: {title(s, run)}; 95% intervals by {s['bootstrap']['unit']}"
    if "studies" in s:
        notes = studies.note(s["studies"]) + " " + notes
    warn = [f"**Warning**: {s['pretrained_leakage']}.", ""] if s.get("pretrained_leakage") else []
    lines = [heading, "", *warn, *headline, "", notes, "", "## Per class", "", *per_class, ""]
    if "calibration" in s:
        lines += calibration_report.section(s, s.get("task", "single-label"))
    if "subgroups" in s:
        lines += subgroups.section(s["subgroups"], s.get("task", "single-label"))
    lines += ["## Figures", ""]
    lines += [f"![{alt}]({name})" for name, alt in figure_links.items()]
    return "\n".join(lines) + "\n"


def read_history(path: Path, task: str) -> pd.DataFrame:
    """metrics.csv: one row per epoch with the columns the curves plot, all numbers (empty when missing)."""
    if not path.exists():
        return pd.DataFrame()
    k = figures.CURVES[task]["select"]
    need = ["epoch", "train_loss", "val_loss", f"train_{k}", f"val_{k}", "train_auroc", "val_auroc"]
    fix = "the file was altered or is damaged; rerun the run's fit command into a new --out"
    try:
        history = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: not a readable CSV ({str(e).splitlines()[0][:100]}); {fix}") from None
    missing = [c for c in need if c not in history]
    if missing:
        raise UsageError(f"{path}: no column {', '.join(missing)}; {fix}")
    if len(history) and not all(pd.api.types.is_numeric_dtype(history[c]) for c in need):
        raise UsageError(f"{path}: a column of {', '.join(need)} holds text, not numbers; {fix}")
    return history


def training_curves(run: Path, out: Path, s: dict, best_epoch: int | None, task: str) -> dict[str, str]:
    """training_curves.png from metrics.csv, and its figure link; none for a run without a training history
    (tau-norm only rescales a trained classifier)."""
    history = read_history(run / "metrics.csv", task)
    if not len(history):
        return {}
    loss = read_json(run / "config.json")["method"]["loss"]
    figures.save(figures.training_curves(history, best_epoch, loss, short_title(s, "training curves"), task),
                 out / "training_curves.png")
    return {"training_curves.png": "training curves: the method's loss, the plain validation loss, the selection "
                                   "metric and AUROC per epoch, the best epoch dotted"}
