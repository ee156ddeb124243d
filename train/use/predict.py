"""python -m train predict RUN --images PATH: class probabilities for images that were never packed.

PATH is a folder (searched recursively for PNG, JPEG and DICOM files), one
image file, or a CSV with a ``path`` column (relative paths are under the
CSV's folder). Each image goes through the run's own preprocessing
(``train.use.preprocess``) in DataLoader workers; batches are normalised and
classified on the device. The output CSV (written atomically) has one row per
image: path, each class's probability, each class's logit (``logit:CLASS``), and the predicted class and its
probability
(single-label), or the findings, "; "-separated (multi-label): the classes whose
probability reaches their threshold, by default the one the run tuned on val for
each class (F1@tuned of its summary), or one threshold for all (``--threshold 0.5``).
"""
import io
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from eval.tasks import TASKS
from shards.images import BadImage
from shards.atomic import make_dir, write_atomic
from shards.errors import UsageError
from shards.progress import Progress

from ..loop.inference import tta_forward
from .dicom import DICOM_SUFFIXES, is_dicom
from .load import TrainedModel

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", *DICOM_SUFFIXES)
LOGIT = "logit:"  # the CSV's logit columns: "logit:CLASS"


def is_image_file(path: Path) -> bool:
    """An image of a folder: a file with an image suffix, or a DICOM file without a suffix (DICM at byte 128),
    as PACS exports name them."""
    if not path.is_file():
        return False
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        return not path.suffix and is_dicom(path)
    except OSError:  # unreadable: not counted as an image of the folder
        return False


def find_images(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if is_image_file(p))
        if not found:
            raise UsageError(f"--images {path}: no {', '.join(IMAGE_SUFFIXES)} files in it or below it")
        return found
    if not path.exists():
        raise UsageError(f"--images {path}: no such file or folder; give a folder, an image or a CSV with a "
                         f"'path' column")
    if path.suffix.lower() != ".csv":
        return [path]
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else "empty"
        raise UsageError(f"--images {path}: not a readable CSV ({why}); give one with a 'path' column") from None
    if "path" not in table.columns:
        raise UsageError(f"--images {path}: no 'path' column (it has {', '.join(table.columns)}); name the "
                         f"column of image paths 'path'")
    if not len(table):
        raise UsageError(f"--images {path}: no rows under its header; list one image path a row")
    return [p if p.is_absolute() else path.parent / p for p in map(Path, table["path"])]


class ImageFiles(Dataset):
    """item -> (uint8 (1, S, S) image or None, position, reason it could not be read or None)."""

    def __init__(self, paths: list[Path], preprocess):
        self.paths, self.preprocess = paths, preprocess

    def __getitem__(self, i):
        try:
            return self.preprocess.pixels(self.paths[i]), i, None
        except BadImage as e:
            return None, i, str(e)

    def __len__(self):
        return len(self.paths)


def _collate(items):
    good = [(x, i) for x, i, _ in items if x is not None]
    x = torch.stack([x for x, _ in good]) if good else None
    return x, [i for _, i in good], [(i, why) for _, i, why in items if why is not None]


def name(item, i: int) -> str:
    """A path as it is; an image given in memory (PIL, array) by its position."""
    return str(item) if isinstance(item, (str, Path)) else f"image {i} (in memory)"


@torch.no_grad()
def predict_logits(tm: TrainedModel, paths: list[Path], batch_size: int = 64, workers: int = 2,
                   skip_bad: bool = False, amp=None, tta: str = "none") -> tuple[np.ndarray, list[int], list]:
    """(float64 logits of the readable images, their positions in ``paths``, [(path, reason)] of the rest);
    ``tta``: averaged over test-time views (``train.loop.inference.TTA``)."""
    device = next(tm.model.parameters()).device
    loader = DataLoader(ImageFiles(paths, tm.preprocess), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, pin_memory=device.type == "cuda")
    logits, kept, bad = [], [], []
    progress = Progress(len(paths), "predict")
    for x, positions, failed in loader:
        for i, why in failed:
            if not skip_bad:
                raise UsageError(f"{name(paths[i], i)}: {why}. Replace or remove the file, or pass --skip-bad to "
                                 f"leave it out (it is then listed in the log)")
            log.warning("skipped %s: %s", paths[i], why)
            bad.append((paths[i], why))
        if x is not None:
            with amp() if amp else torch.autocast(device.type, enabled=False):
                x = tm.preprocess.normalise(x.to(device, non_blocking=True))
                logits.append(tta_forward(tm.model, x, tta).float().cpu())
            kept += positions
        progress.update(len(positions) + len(failed))
    progress.close()
    out = torch.cat(logits).numpy().astype(np.float64) if logits else np.zeros((0, len(tm.class_names)))
    return out, kept, bad


def probability_table(paths: list[Path], logits: np.ndarray, class_names: list[str],
                      task: str = "single-label", thresholds=0.5) -> pd.DataFrame:
    """``thresholds`` (multi-label): one for every class, or one per class."""
    probs = TASKS[task].scores(logits)
    table = pd.concat([pd.DataFrame(probs, columns=class_names),
                       pd.DataFrame(logits, columns=[f"{LOGIT}{c}" for c in class_names])], axis=1)
    table.insert(0, "path", [str(p) for p in paths])
    if task == "multi-label":
        table["findings"] = ["; ".join(np.asarray(class_names)[row >= thresholds]) for row in probs]
        return table
    table["predicted"] = [class_names[k] for k in probs.argmax(1)]
    table["probability"] = probs.max(1) if len(probs) else []
    return table


def write_table(path: Path, table: pd.DataFrame) -> None:
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g")
    make_dir(Path(path).parent)
    write_atomic(Path(path), buf.getvalue().encode())


def findings_thresholds(tm: TrainedModel, threshold: str):
    """``--threshold``: 'tuned' (the run's per-class thresholds) or a probability for every class."""
    if threshold != "tuned":
        try:
            value = float(threshold)
        except ValueError:
            value = -1.0
        if not 0 < value < 1:
            raise UsageError(f"--threshold {threshold}: give tuned or a probability strictly between 0 and 1, "
                             f"such as 0.5")
        return value
    if tm.thresholds is None:
        raise UsageError("--threshold tuned: the run has no tuned thresholds (its summary.json is missing or "
                         "older); finish the run (rerun its fit command) or give --threshold 0.5")
    return np.asarray(tm.thresholds)


def predict(tm: TrainedModel, images: Path, out: Path, batch_size: int = 64, workers: int = 2,
            skip_bad: bool = False, amp=None, threshold: str = "tuned", any_modality: bool = False,
            tta: str = "none") -> dict:
    """Write the probability CSV for ``images``; returns {images, skipped: [(path, reason)], out}.
    ``threshold`` (multi-label runs): see ``findings_thresholds``."""
    cut = findings_thresholds(tm, threshold) if tm.task == "multi-label" else None
    if any_modality:
        tm = replace(tm, preprocess=replace(tm.preprocess, any_modality=True))
    paths = find_images(images)
    logits, kept, bad = predict_logits(tm, paths, batch_size, workers, skip_bad, amp, tta)
    write_table(out, probability_table([paths[i] for i in kept], logits, tm.class_names, tm.task, cut))
    return {"images": len(kept), "skipped": bad, "out": str(out), "findings": describe_thresholds(cut)}


def describe_thresholds(cut) -> str | None:
    """What a multi-label CSV's findings were cut at, in words (None for single-label)."""
    if cut is None:
        return None
    if np.ndim(cut) == 0:
        return f"findings at probability {cut:g} or more, every class"
    return (f"findings at each class's threshold tuned on val by the run ({np.min(cut):g} to {np.max(cut):g}; "
            f"a class without a val positive keeps 0.5)")
