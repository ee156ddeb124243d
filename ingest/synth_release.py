"""Synthetic CXR-LT 2024 and 2026 releases in the exact layout of the real ones, for demos and tests.

CXR-LT 2024: ``labels/train_labeled.csv`` (dicom_id, subject_id, study_id, ViewPosition,
ViewCodeSequence_CodeMeaning, fpath + the 40 classes), ``development_labeled_task{1,2}.csv`` and
``test_labeled_task{1,2}.csv`` (task 2: the 26 classes), and JPEGs at MIMIC-CXR-JPG 2.0.0's paths
``mimic-cxr-jpg/files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg``. CXR-LT 2026: ``labels/CXRLT_2026_training.csv``
(ImageID, StudyDate_DICOM, PatientID + the 30 classes) over 16-bit PadChest PNGs (12 bits of anatomy, no sBIT
chunk, a burned-in marker at 65535 on every third image, as scanned films carry) in ``padchest/images/N/`` and
8-bit NIH PNGs in ``nih/images_001/images/``. Ids, patients and studies are made up in the real formats; the
labels are drawn with a long tail (the first class of the file order most frequent), at least
``MIN_PER_CLASS`` positives of each class in train. ``--scale`` is the fraction of the real training rows
(258,871 and 142,928); development and test get a tenth of that each (their real sizes are not public to us).
"""
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from shards.atomic import atomic_file, write_atomic
from shards.progress import Progress

from . import IngestError
from .datasets.cxr_lt import CXR_LT_2024_CLASSES, CXR_LT_2024_TASK2_CLASSES, CXR_LT_2026_CLASSES, TRAIN_2024, TRAIN_2026
from .phantom import render
from .synth import MARKER

log = logging.getLogger(__name__)
MIN_PER_CLASS, MIN_IMAGES = 3, 40
REAL_TRAIN = {"cxr-lt-2024": 258_871, "cxr-lt-2026": 142_928}
VIEWS = [("AP", "antero-posterior"), ("PA", "postero-anterior"), ("LATERAL", "lateral"), ("LL", "left lateral"),
         ("", "")]
VIEW_SHARE = [100_024, 66_470, 57_546, 24_080, 10_734]  # the 2024 training file's ViewPosition counts


def long_tail_labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """(n, classes) int8 multi-hot: prevalence from 0.3 down to 0.0015, at least MIN_PER_CLASS of each class."""
    prevalence = 0.3 * (0.005 ** (np.arange(classes) / max(1, classes - 1)))
    labels = (rng.random((n, classes)) < prevalence).astype(np.int8)
    for c in range(classes):
        short = MIN_PER_CLASS - int(labels[:, c].sum())
        if short > 0:
            labels[rng.choice(np.flatnonzero(labels[:, c] == 0), size=short, replace=False), c] = 1
    return labels


def _hex(rng, k: int) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=k))


def _rows_2024(n: int, rng: np.random.Generator, first_subject: int) -> pd.DataFrame:
    """n images of about n / 3 patients, 1-2 studies each, 1-2 views a study, at MIMIC-CXR-JPG's paths."""
    rows, subject = [], first_subject
    while len(rows) < n:
        subject += int(rng.integers(1, 50))
        for _ in range(int(rng.integers(1, 3))):
            study = int(rng.integers(50_000_000, 60_000_000))
            for _ in range(int(rng.integers(1, 3))):
                dicom = "-".join(_hex(rng, 8) for _ in range(5))
                view, meaning = VIEWS[rng.choice(len(VIEWS), p=np.array(VIEW_SHARE) / sum(VIEW_SHARE))]
                rows.append({"dicom_id": dicom, "subject_id": str(subject), "study_id": str(study),
                             "ViewPosition": view, "ViewCodeSequence_CodeMeaning": meaning,
                             "fpath": f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"})
    return pd.DataFrame(rows[:n])


def _with_labels(df: pd.DataFrame, classes: list[str], rng) -> pd.DataFrame:
    labels = pd.DataFrame(long_tail_labels(len(df), len(classes), rng).astype(str), columns=classes)
    return pd.concat([df.reset_index(drop=True), labels], axis=1)


def release_2024(n_train: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng([seed, 2024])
    n_other = max(MIN_IMAGES // 2, n_train // 10)
    files = {TRAIN_2024: _with_labels(_rows_2024(n_train, rng, 10_000_000), CXR_LT_2024_CLASSES, rng)}
    for k, (name, first) in enumerate([("development", 17_000_000), ("test", 18_000_000)]):
        rows = _rows_2024(n_other, rng, first)
        files[f"{name}_labeled_task1.csv"] = _with_labels(rows, CXR_LT_2024_CLASSES, rng)
        files[f"{name}_labeled_task2.csv"] = _with_labels(rows, CXR_LT_2024_TASK2_CLASSES, rng)
    return files


def release_2026(n: int, seed: int) -> pd.DataFrame:
    """PadChest rows (about 90%) and NIH rows, 1-3 images a patient."""
    rng = np.random.default_rng([seed, 2026])
    rows, nih_patient = [], 0
    while len(rows) < n:
        if rng.random() < 0.9:
            patient = "".join(rng.choice(list("0123456789"), size=36))
            ids = [f"{''.join(rng.choice(list('0123456789'), size=38))}_{_hex(rng, 6)}.png"
                   for _ in range(int(rng.integers(1, 4)))]
        else:
            nih_patient += int(rng.integers(1, 30))
            patient = str(nih_patient)
            ids = [f"{nih_patient:08d}_{k:03d}.png" for k in range(int(rng.integers(1, 4)))]
        date = f"20{int(rng.integers(9, 18)):02d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
        rows += [{"ImageID": i, "StudyDate_DICOM": date, "PatientID": patient} for i in ids]
    return _with_labels(pd.DataFrame(rows[:n]), CXR_LT_2026_CLASSES, rng)


def deep_png(grey: np.ndarray, marker: bool, rng) -> Image.Image:
    """A PadChest-like 16-bit image: 12 bits of data (no sBIT), optionally a burned-in marker at 65535."""
    deep = grey.astype(np.uint16) * 16 + rng.integers(0, 16, grey.shape, dtype=np.uint16)
    if marker:
        s = max(1, grey.shape[0] // 16)
        deep[:s, :s] = 0xFFFF
    return Image.fromarray(deep)


def synth_release(dataset: str, out: Path, scale: float = 1.0, image_size: int = 1024, seed: int = 0) -> dict:
    """Write ``labels/`` and the images of a synthetic release under ``out``; returns what was written."""
    if dataset not in REAL_TRAIN:
        raise IngestError(f"--dataset {dataset}: synth makes nih-cxr-lt, cxr-lt-2024 or cxr-lt-2026")
    if not 0 < scale <= 1:
        raise IngestError(f"--scale {scale}: the fraction of the training rows to make must be in (0, 1]")
    out, n = Path(out), max(MIN_IMAGES, int(round(scale * REAL_TRAIN[dataset])))
    files = release_2024(n, seed) if dataset == "cxr-lt-2024" else {TRAIN_2026: release_2026(n, seed)}
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for name, df in files.items():
        write_atomic(out / "labels" / name, df.to_csv(index=False))
    info = {"dataset": dataset, "scale": scale, "image_size": image_size, "seed": seed,
            "rows": {k: len(v) for k, v in files.items()}}
    write_atomic(out / MARKER, json.dumps(info, indent=1))  # before any pixel: build-shards marks them synthetic
    classes = CXR_LT_2024_CLASSES if dataset == "cxr-lt-2024" else CXR_LT_2026_CLASSES
    rows = pd.concat([f for f in files.values() if classes[-1] in f.columns], ignore_index=True)
    where = rows["fpath"] if dataset == "cxr-lt-2024" else rows["ImageID"]
    labels = rows[classes].astype(int).to_numpy()
    progress = Progress(len(rows), "synth")
    for k, (image, hot) in enumerate(zip(where, labels)):
        rng = np.random.default_rng([seed, k])
        _write(out, dataset, image, render(hot, classes.index("Normal"), image_size, rng), rng, k)
        progress.update()
    progress.close()
    info["images"] = len(rows)
    return info


def _write(out: Path, dataset: str, image: str, grey: np.ndarray, rng, k: int) -> None:
    """``image``: the 2024 fpath, or the 2026 ImageID (NIH's 00000001_000.png, else PadChest's)."""
    if dataset == "cxr-lt-2024":
        path, pixels = out / "mimic-cxr-jpg" / image, Image.fromarray(grey)
    elif len(image.split("_")[0]) == 8:
        path, pixels = out / "nih" / "images_001" / "images" / image, Image.fromarray(grey)
    else:
        path, pixels = out / "padchest" / "images" / str(k % 55) / image, deep_png(grey, k % 3 == 0, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        pixels.save(f, "JPEG" if path.suffix == ".jpg" else "PNG", **({"quality": 90} if path.suffix == ".jpg" else {}))
