"""Headline numbers per subgroup (sex, age band, view position or any column) of a metadata CSV joined on the
image id: ``eval report --by COLUMN --metadata CSV``. Nothing is invented: without the CSV there are no
subgroups, and an image the CSV does not list is counted as unmatched, in no subgroup.

NIH's ``Data_Entry_2017_v2020.csv`` names its images in ``Image Index`` and has ``Patient Age``, ``Patient
Gender`` and ``View Position``; MIMIC's metadata has ``dicom_id`` and ``ViewPosition``. ``sex``, ``age band``
and ``view`` name those columns in either; ``age band`` cuts the age into decades from 20 (under 20, 20-39,
40-59, 60-79, 80 and over).
"""
from pathlib import Path

import numpy as np
import pandas as pd

from shards.errors import UsageError
from shards.format import key_for

from . import metrics as m
from .tasks import sigmoid, softmax

ID_COLUMNS = ("Image Index", "image_id", "dicom_id", "Path", "path")
ALIASES = {"sex": ("Patient Gender", "gender", "sex", "PatientSex"),
           "view": ("View Position", "ViewPosition", "view"),
           "age band": ("Patient Age", "anchor_age", "age", "PatientAge")}
AGE_BANDS = ([0, 20, 40, 60, 80, np.inf], ["under 20", "20-39", "40-59", "60-79", "80 and over"])


def read_metadata(path: Path) -> pd.DataFrame:
    """The CSV; a missing or unreadable one is one UsageError line."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--metadata {path} does not exist; give the metadata CSV (for NIH: "
                         "Data_Entry_2017_v2020.csv)")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"--metadata {path}: not a readable CSV ({str(e).splitlines()[0][:100]})") from None


def safe_key(image_id: str) -> str | None:
    """The shard key of an id of the CSV; None for one no image can have (it matches nothing)."""
    try:
        return key_for(image_id)
    except ValueError:
        return None


def subgroup_of(keys, metadata: pd.DataFrame, by: str, path: Path) -> np.ndarray:
    """Each image's subgroup (None where the CSV does not list it)."""
    id_col = next((c for c in ID_COLUMNS if c in metadata), None)
    if id_col is None:
        raise UsageError(f"--metadata {path} has no image id column ({', '.join(ID_COLUMNS)}); it has "
                         f"{', '.join(metadata.columns[:8])}")
    column = by if by in metadata else next((c for c in ALIASES.get(by, ()) if c in metadata), None)
    if column is None:
        known = ", ".join(sorted(ALIASES))
        raise UsageError(f"--by {by}: {path} has no such column (it has {', '.join(metadata.columns[:8])}"
                         f"{', ...' if len(metadata.columns) > 8 else ''}); give one of its columns or {known}")
    values = metadata[column].str.strip()
    if by == "age band":
        age = pd.to_numeric(values.str.rstrip("Y"), errors="coerce")  # NIH: "058"; DICOM: "058Y"
        values = pd.cut(age, AGE_BANDS[0], right=False, labels=AGE_BANDS[1]).astype(object).where(age.notna(), None)
    lookup = {key: v for key, v in zip(map(safe_key, metadata[id_col]), values) if key}
    return np.array([lookup.get(k) or None for k in keys], dtype=object)


def headline(task: str, labels, logits) -> dict:
    """The subgroup's numbers: single-label bAcc, mF1 and AUROC; multi-label mAP, AUROC and F1@0.5."""
    if task == "single-label":
        c, predicted = logits.shape[1], logits.argmax(1)
        return {"bacc": m.balanced_accuracy(labels, predicted, c), "mf1": m.macro_f1(labels, predicted, c),
                "auroc": m.macro_auroc(labels, softmax(logits))}
    scores = sigmoid(logits)
    return {"map": m.multilabel_map(labels, scores), "auroc": m.multilabel_auroc(labels, scores),
            "f1": m.multilabel_f1(labels, scores, 0.5)}


def subgroup_numbers(test, task: str, by: str, metadata_path: Path, n_boot: int = 1000, seed: int = 0,
                     clusters=None) -> dict:
    """{"by", "metadata", "unmatched", "groups": {value: {"images": n, number: {"value", "ci95"}...}}} on test;
    the intervals by the report's bootstrap (``clusters``: resampling patients)."""
    groups = subgroup_of(test.keys, read_metadata(metadata_path), by, metadata_path)
    out = {}
    for value in sorted({g for g in groups if g is not None}, key=str):
        rows = groups == value
        keys = list(HEADS[task])
        point, low, high = m.bootstrap_ci(lambda y, z: np.array([headline(task, y, z)[k] for k in keys]),
                                          test.labels[rows], test.logits[rows], n_boot=n_boot, seed=seed,
                                          clusters=None if clusters is None else clusters[rows])
        out[str(value)] = {"images": int(rows.sum()), **{k: {"value": float(point[i]), "ci95": [float(low[i]),
                                                                                              float(high[i])]}
                                                          for i, k in enumerate(keys)}}
    return {"by": by, "metadata": str(metadata_path), "unmatched": int(sum(g is None for g in groups)),
            "groups": out}


HEADS = {"single-label": {"bacc": "bAcc", "mf1": "mF1", "auroc": "AUROC"},
         "multi-label": {"map": "mAP", "auroc": "AUROC", "f1": "F1@0.5"}}


def section(sub: dict, task: str) -> list[str]:
    """report.md's subgroup table."""
    from .report_page import fmt_ci  # here: report_page imports this module for its page

    heads = HEADS[task]
    lines = [f"## Subgroups by {sub['by']}", "", f"| {sub['by']} | test images | " + " | ".join(heads.values()) + " |",
             "|---|---|" + "---|" * len(heads)]
    for value, row in sub["groups"].items():
        lines.append(f"| {value} | {row['images']} | " + " | ".join(
            "n/a" if np.isnan(row[k]["value"]) else fmt_ci(row[k]) for k in heads) + " |")
    lines += ["", f"The headline numbers on the test images of each subgroup, from {Path(sub['metadata']).name} "
              f"joined on the image id; {sub['unmatched']} test images it does not list are in none. Brackets: the "
              "report's bootstrap interval within the subgroup (a small subgroup's is wide).", ""]
    return lines
