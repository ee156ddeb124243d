"""Study-level scores: ``eval report RUN --by-study mean|max`` aggregates the image probabilities of each study
(MIMIC-CXR-LT, CXR-LT 2024: several views per study) and scores the studies, as the CXR-LT challenges do.

The study of each image comes from the shards index (its ``study_id`` column, written where the label files
carry studies). The studies form a run-like dir, RUN/by-study-HOW/ (eval.derived_run), reported like any run.
A study whose images carry different labels has no one label: it is left out, and the report says how many.
"""
import logging
from pathlib import Path

import numpy as np

from shards.errors import UsageError
from shards.format import INDEX_FILE
from shards.index import read_index

from .derived_run import write_derived_run
from .predictions import Predictions
from .runs import read_json, run_meta, run_predictions, task_of_run
from .tasks import TASKS

log = logging.getLogger(__name__)
AGGREGATES = {"mean": np.mean, "max": np.max}


def study_of_images(run: Path) -> dict[str, str]:
    """key -> study id, from the run's shards index; a run without one is one UsageError line."""
    shards = read_json(Path(run) / "config.json")["config"].get("shards")
    path = Path(str(shards)) / INDEX_FILE
    if not shards or not path.exists():
        raise UsageError(f"--by-study reads each image's study from the run's shards index, and {path} is not "
                         "there; put the shards dir back where the run trained on it")
    index, _ = read_index(path)
    if "study_id" not in index or not (index["study_id"].astype(str) != "").any():
        raise UsageError(f"--by-study: {path} has no study_id (its label files name no studies); studies exist "
                         "for MIMIC-CXR-LT and CXR-LT 2024, or a --dataset csv spec with a study column")
    return dict(zip(index["key"], index["study_id"].astype(str)))


def aggregate(p: Predictions, study: dict[str, str], task: str, how: str) -> tuple[Predictions, list[str]]:
    """One row per study: its images' probabilities aggregated by ``how``, its label, its patient; and the
    studies left out because their images' labels disagree. An image without a study is its own study."""
    ids = np.array([study.get(k) or f"image {k}" for k in p.keys])
    probs = TASKS[task].scores(p.logits)
    order = np.argsort(ids, kind="stable")
    starts = np.r_[0, np.flatnonzero(ids[order][1:] != ids[order][:-1]) + 1]
    keep, disagree, rows = [], [], []
    for members in np.split(order, starts[1:]):
        labels = p.labels[members]
        if not (labels == labels[0]).all():
            disagree.append(ids[members[0]])
            continue
        keep.append(members[0])
        rows.append(AGGREGATES[how](probs[members], axis=0))
    keep = np.array(keep, dtype=int)
    out = np.array(rows).reshape(len(keep), probs.shape[1])
    if task == "single-label":
        out = out / out.sum(axis=1, keepdims=True)  # max of softmax rows: renormalised to a distribution
    return Predictions(ids[keep], p.patients[keep], p.labels[keep], out), disagree


def write_studies(run: Path, how: str) -> Path:
    """RUN/by-study-HOW/: the run's studies as a run-like dir; returns it."""
    task = task_of_run(run)
    study = study_of_images(run)
    meta = run_meta(run)
    splits, counts = {}, {}
    for split in (("val", "test") if task == "multi-label" else ("val", "balanced-test", "test")):
        images = run_predictions(run, split)
        splits[split], disagree = aggregate(images, study, task, how)
        counts[split] = {"images": len(images.keys), "studies": len(splits[split].keys) + len(disagree),
                         "disagreeing": len(disagree), "first_disagreeing": disagree[:3]}
        if disagree:
            log.warning("%s: %d studies whose images' labels disagree are left out (first: %s)", split,
                        len(disagree), ", ".join(disagree[:3]))
    name = f"{meta['config']['method']}"
    studies = {"aggregate": how, "of_run": str(run), "splits": counts}
    out = Path(run) / f"by-study-{how}"
    write_derived_run(out, {**meta, "studies": studies, "config": {**meta["config"], "method": name}}, task, splits,
                      {"studies": studies, "index_sha256": read_json(Path(run) / "summary.json").get("index_sha256")})
    return out


def note(studies: dict) -> str:
    """report.md's line on what a study-level report scores."""
    test = studies["splits"]["test"]
    text = (f"Study-level: each study's image probabilities aggregated by their {studies['aggregate']} "
            f"({test['images']} test images in {test['studies']} studies); every number below counts studies, "
            "not images.")
    if test["disagreeing"]:
        text += (f" {test['disagreeing']} test studies whose images carry different labels are left out (first: "
                 f"{', '.join(test['first_disagreeing'])}).")
    return text
