"""The calibration part of a report: ECE, NLL and Brier on test, with ``--calibrate temperature`` the
temperature fitted on val and the numbers after it; the reliability diagram."""
from pathlib import Path

import numpy as np

from . import figures
from .calibration import BINS, calibration, pooled, reliability, top_label
from .runs import run_predictions
from .tasks import TASKS
from .temperature import fit_temperature

CALIBRATIONS = ("none", "temperature")
MEANING = (f"ECE (expected calibration error, {BINS} equal-width bins): how far, on average over the images, the "
           "confidence differs from the accuracy actually reached (0: the probabilities mean what they say). "
           "NLL: the mean negative log-likelihood of the true labels (lower is better; punishes confident "
           "mistakes). Brier: the mean squared distance of the probabilities from the 0/1 labels (lower is "
           "better).")
SCOPE = {"single-label": "top-label ECE (confidence: the top softmax probability)",
         "multi-label": "ECE per class on its sigmoid, macro-averaged; NLL and Brier over every image and class"}


def calibration_numbers(run: Path, task: str, calibrate: str = "none") -> dict:
    """{"test": calibration(...)} and, with ``calibrate="temperature"``, the temperature fitted on val, val NLL
    before and after, and the test numbers after it."""
    test = run_predictions(run, "test")
    out = {"test": calibration(test.labels, test.logits, task)}
    if calibrate == "temperature":
        val = run_predictions(run, "val")
        t = fit_temperature(val.labels, val.logits, task)
        out["temperature"] = {"fitted_on": "val", "by": "NLL", "t": t.tolist(),
                              "val_nll_before": calibration(val.labels, val.logits, task)["nll"],
                              "val_nll_after": calibration(val.labels, val.logits / t, task)["nll"],
                              "test_after": calibration(test.labels, test.logits / t, task)}
    return out


def section(s: dict, task: str) -> list[str]:
    """report.md's calibration lines: a table of test ECE, NLL, Brier (before and after temperature scaling)."""
    c = s["calibration"]
    rows = [("test", c["test"])]
    lines = ["## Calibration", "", "| probabilities | ECE | NLL | Brier |", "|---|---|---|---|"]
    t = c.get("temperature")
    if t:
        rows.append(("test, temperature-scaled", t["test_after"]))
    lines += [f"| {name} | {v['ece']:.3f} | {v['nll']:.3f} | {v['brier']:.3f} |" for name, v in rows]
    lines += ["", f"{SCOPE[task]}. {MEANING}"]
    if t:
        ts = t["t"]
        shown = f"T = {ts[0]:.3f}" if len(ts) == 1 else f"one T per class, {min(ts):.3f} to {max(ts):.3f}"
        lines.append(f"Temperature scaling: logits divided by {shown}, fitted on val by NLL (val NLL "
                     f"{t['val_nll_before']:.3f} -> {t['val_nll_after']:.3f}); it keeps every ranking, so only "
                     "these numbers change.")
    return lines + [""]


def curves(run: Path, task: str, s: dict) -> dict[str, tuple]:
    """The reliability diagram's curves on test: label -> (counts, mean confidence, accuracy) per bin."""
    test = run_predictions(run, "test")
    points = top_label if task == "single-label" else pooled
    out = {"as saved": reliability(*points(test.labels, TASKS[task].scores(test.logits)))}
    if "temperature" in s["calibration"]:
        t = np.asarray(s["calibration"]["temperature"]["t"])
        out["temperature-scaled"] = reliability(*points(test.labels, TASKS[task].scores(test.logits / t)))
    return out


def write_reliability(run: Path, out: Path, task: str, s: dict, title: str) -> dict[str, str]:
    """reliability.png (and .pdf) titled ``title``; its link."""
    what = "top-label" if task == "single-label" else "every image and class pooled"
    figures.save(figures.reliability_diagram(curves(run, task, s), f"{title} ({what})"), out / "reliability.png")
    return {"reliability.png": f"reliability diagram on test ({what}): accuracy against confidence in "
                               f"{BINS} equal-width bins, the image count per bin below"}
