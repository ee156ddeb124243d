"""python -m train evaluate RUN --tta hflip: a finished run's best.pt scored again on its shards' val and test
(and balanced-test), its logits averaged over test-time views (``train.loop.inference.TTA``), into RUN/tta-NAME/:
a run-like dir (predictions/, summary.json) that eval report and eval table read. The run's own predictions and
summary stay as they are."""
import logging
from pathlib import Path

import numpy as np
import torch

from eval.derived_run import write_derived_run
from eval.predictions import Predictions
from eval.runs import read_json, run_meta
from eval.tasks import TASKS
from shards.augment import AugmentSpec
from shards.errors import UsageError
from shards.index import targets
from shards.reader import open_shards
from shards.torch_loader import apply_augment

from ..loop.inference import tta_forward
from .load import TrainedModel, load_model

log = logging.getLogger(__name__)


@torch.no_grad()
def split_logits(tm: TrainedModel, ss, view: str, tta: str, batch_size: int, amp) -> np.ndarray:
    """float64 logits of every image of a split in index order: the shards' pixels as the run's evaluation saw
    them (resized to its image size, normalised), through ``tta_forward``."""
    device = next(tm.model.parameters()).device
    size, out, batch = tm.preprocess.image_size, [], []

    def flush():
        x = tm.preprocess.normalise(torch.stack(batch).to(device))
        with amp() if amp else torch.autocast(device.type, enabled=False):
            out.append(tta_forward(tm.model, x, tta).float().cpu())
        batch.clear()

    for _, img, _ in ss.samples(view):
        batch.append(apply_augment(torch.from_numpy(np.array(img))[None], AugmentSpec(size), None))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return torch.cat(out).numpy().astype(np.float64)


def evaluate(run: Path, tta: str, device="cpu", shards: str | Path | None = None, batch_size: int = 64,
             amp=None) -> Path:
    """Writes RUN/tta-TTA/; returns it."""
    run = Path(run)
    meta, summary = run_meta(run), read_json(run / "summary.json")
    if meta["config"].get("folds"):
        raise UsageError(f"{run} is a --folds run (its val is a fold of train); evaluate scores runs on their "
                         "shards' own splits")
    tm = load_model(run, device, shards)
    ss = open_shards(Path(shards or meta["config"]["shards"]))
    if ss.index_sha256 != summary.get("index_sha256"):
        raise UsageError(f"{ss.root}: not the shards build {run} was trained on "
                         "(index hash differs); pass --shards with the run's own shards dir")
    task, splits = tm.task, {}
    for view in ("val", "test"):
        rows = ss.view(view)
        logits = split_logits(tm, ss, view, tta, batch_size, amp)
        labels = targets(rows, task == "multi-label").astype(np.int64)
        splits[view] = Predictions(rows["key"].to_numpy(), rows["patient_id"].to_numpy(), labels,
                                   TASKS[task].scores(logits))
        log.info("%s: %d images scored with tta %s", view, len(rows), tta)
    if task == "single-label":  # balanced-test: the flagged subset of test, as the run saved it
        bt, t = ss.view("test")["balanced_test"].to_numpy(), splits["test"]
        splits["balanced-test"] = Predictions(t.keys[bt], t.patients[bt], t.labels[bt], t.logits[bt])
    out = run / f"tta-{tta}"
    config = {**meta["config"], "tta": tta}
    write_derived_run(out, {**meta, "config": config, "tta": tta, "of_run": str(run)}, task, splits,
                      {"tta": tta, "of_run": str(run), "index_sha256": summary.get("index_sha256")})
    return out
