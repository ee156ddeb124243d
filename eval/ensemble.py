"""python -m eval ensemble RUN1 RUN2 ... --out DIR: the runs' probabilities combined into a run-like dir
(eval.derived_run) that eval report and eval table read like any run; a multi-label ensemble's F1 thresholds are
tuned on its own val predictions.

Only runs that predict on the same thing combine: one task, one shards index, the same classes, the same images
with the same labels in every split.
"""
import logging
from pathlib import Path

import numpy as np

from shards.errors import UsageError

from .derived_run import write_derived_run
from .predictions import Predictions
from .runs import finished, read_json, refuse_run_file, run_meta, run_predictions, task_of_run
from .tasks import TASKS

log = logging.getLogger(__name__)


def _mean_probs(logits: list[np.ndarray], task: str) -> np.ndarray:
    return np.mean([TASKS[task].scores(z) for z in logits], axis=0)


def _mean_logits(logits: list[np.ndarray], task: str) -> np.ndarray:
    return TASKS[task].scores(np.mean(logits, axis=0))


# name -> (the runs' logits, task) -> probabilities. "geometric", the normalised geometric mean of the
# probabilities, is softmax (sigmoid) of the mean logit: log-softmax differs from the logits by one constant per
# image, and the geometric means of p and 1 - p normalise to sigmoid of the mean logit; so it is that function
COMBINES = {"mean": _mean_probs, "logit-mean": _mean_logits, "geometric": _mean_logits}
def splits(task: str) -> tuple[str, ...]:
    return ("val", "test") if task == "multi-label" else ("val", "balanced-test", "test")


def check_same_predictions(runs: list[Path], task: str) -> dict[str, list[Predictions]]:
    """Each split's predictions of every run, rows in the first run's order; one UsageError line naming the two
    runs and what differs when they do not predict on the same thing."""
    first, metas = runs[0], [run_meta(r) for r in runs]
    summaries = [read_json(r / "summary.json") for r in runs]
    for run, meta, summary in zip(runs[1:], metas[1:], summaries[1:]):
        differs = [what for what, a, b in (
            ("task", task, task_of_run(run)), ("shards index", summaries[0].get("index_sha256"),
                                               summary.get("index_sha256")),
            ("dataset", metas[0]["dataset"], meta["dataset"]), ("classes", metas[0]["class_names"],
                                                                meta["class_names"])) if a != b]
        if differs:
            raise UsageError(f"{first} and {run} differ in {', '.join(differs)}; an ensemble combines runs that "
                             "predict on the same images and classes")
    out = {}
    for split in splits(task):
        preds = [run_predictions(r, split) for r in runs]
        order = {k: i for i, k in enumerate(preds[0].keys)}
        aligned = [preds[0]]
        for run, p in zip(runs[1:], preds[1:]):
            if set(p.keys) != set(order):
                raise UsageError(f"{first} and {run} differ in the images of {split} ({len(preds[0].keys)} vs "
                                 f"{len(p.keys)}); an ensemble combines runs that predict on the same images")
            rows = np.argsort([order[k] for k in p.keys])
            p = Predictions(p.keys[rows], p.patients[rows], p.labels[rows], p.logits[rows])
            if not np.array_equal(p.labels, preds[0].labels):
                raise UsageError(f"{first} and {run} differ in the labels of {split}; an ensemble combines runs "
                                 "of the same shards")
            aligned.append(p)
        out[split] = aligned
    return out


def ensemble(runs: list[Path], out: Path, combine: str = "mean") -> Path:
    """Writes the ensemble of ``runs`` into ``out``; returns it."""
    runs = [finished(r) for r in runs]
    if len(runs) < 2:
        raise UsageError("an ensemble needs two runs or more; give their run dirs")
    refuse_run_file(out, runs)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty; give a new --out for the ensemble")
    task = task_of_run(runs[0])
    preds = check_same_predictions(runs, task)
    metas = [run_meta(r) for r in runs]
    combined = {}
    for split, members in preds.items():
        first = members[0]
        combined[split] = Predictions(first.keys, first.patients, first.labels,
                                      COMBINES[combine]([p.logits for p in members], task))
        log.info("%s: %d images combined (%s of %d runs)", split, len(first.keys), combine, len(runs))
    name = f"ensemble-{combine}"
    members = [str(r) for r in runs]
    meta = {**metas[0], "config": {**metas[0]["config"], "method": name, "members": members, "combine": combine},
            "method": {**metas[0]["method"], "name": name}, "members": members}
    write_derived_run(out, meta, task, combined, {"members": members, "combine": combine, "index_sha256":
                                                  read_json(runs[0] / "summary.json").get("index_sha256")})
    return out
