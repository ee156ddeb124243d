"""A synthetic NIH-CXR-LT in the exact layout of the real download, for demos and tests.

Ids, splits, patients and the val/test labels are the real ones (bundled label
files); the train labels (whose file is not public in our copy) are drawn over
the real train ids with the published per-class counts. ``--scale`` keeps a
fraction of every split per class, at least ``MIN_PER_CLASS`` of each class,
and balanced-test stays a subset of test. The multi-label variant (the MICCAI
2023 files) covers the same images plus a share of multi-finding ones.
"""
import gzip
import io
import json
import logging
import multiprocessing
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from shards.atomic import atomic_file, write_atomic
from shards.progress import Progress

from . import IngestError
from .adapters import NIH_CLASSES, NIH_TRAIN_COUNTS
from .phantom import render

log = logging.getLogger(__name__)
MIN_PER_CLASS = 3
NO_FINDING = NIH_CLASSES.index("No Finding")
ML_CLASSES = [c.replace("Pleural_Thickening", "Pleural Thickening") for c in NIH_CLASSES]
FIRST_FOLDER, PER_FOLDER = 4999, 10000  # images_001 holds 4,999 images, the others 10,000
MARKER = "synth.json"  # in the out dir: build-shards records that these pixels are synthetic


def bundled(name: str) -> pd.DataFrame | list[str]:
    data = resources.files("ingest") / "data" / f"{name}.gz"
    raw = gzip.decompress(data.read_bytes()).decode()
    if name.endswith(".txt"):
        return raw.split()
    return pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False)


def _onehot(df: pd.DataFrame, cols) -> np.ndarray:
    return df[cols].to_numpy().astype(np.int8)


def _take_per_class(ids: np.ndarray, labels: np.ndarray, want: dict[int, int], rng) -> np.ndarray:
    """Indices of ``want[c]`` rows of each class c (all of them if fewer), sorted."""
    picked = []
    for c, k in want.items():
        rows = np.flatnonzero(labels == c)
        picked.append(rng.choice(rows, size=min(k, len(rows)), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)


def _want(counts: np.ndarray, scale: float) -> dict[int, int]:
    return {c: max(MIN_PER_CLASS, int(round(scale * n))) for c, n in enumerate(counts)}


def single_label_splits(scale: float, seed: int) -> dict[str, pd.DataFrame]:
    """The four single-label files: id, 20 one-hot columns, subject_id."""
    rng = np.random.default_rng([seed, 1])
    test, val = bundled("nih-cxr-lt_single-label_test.csv"), bundled("nih-cxr-lt_single-label_balanced-val.csv")
    btest = bundled("nih-cxr-lt_single-label_balanced-test.csv")
    all_ids = bundled("nih-cxr-lt_image_ids.csv")["id"]
    train_ids = np.sort(np.array(sorted(set(all_ids) - set(test["id"]) - set(val["id"]))))
    counts = np.array([NIH_TRAIN_COUNTS[c] for c in NIH_CLASSES])
    train_labels = rng.permutation(np.repeat(np.arange(len(NIH_CLASSES)), counts))
    train = pd.DataFrame(np.eye(len(NIH_CLASSES), dtype=np.int8)[train_labels].astype(str), columns=NIH_CLASSES)
    train.insert(0, "id", train_ids)
    train["subject_id"] = [i[:8] for i in train_ids]
    files = {"train": train, "balanced-val": val, "test": test, "balanced-test": btest}
    if scale >= 1:
        return files
    label = {k: _onehot(df, NIH_CLASSES).argmax(1) for k, df in files.items()}
    out = {}
    for name in ("train", "balanced-val", "balanced-test"):
        n = np.bincount(label[name], minlength=len(NIH_CLASSES))
        out[name] = files[name].iloc[_take_per_class(files[name]["id"], label[name], _want(n, scale), rng)]
    # test = the kept balanced-test images plus enough of the rest to keep test's class proportions
    in_bt = test["id"].isin(set(out["balanced-test"]["id"])).to_numpy()
    kept_bt = np.bincount(label["test"][in_bt], minlength=len(NIH_CLASSES))
    want = {c: max(0, k - kept_bt[c]) for c, k in _want(np.bincount(label["test"]), scale).items()}
    rest = np.flatnonzero(~in_bt)
    extra = rest[_take_per_class(test["id"].to_numpy()[rest], label["test"][rest], want, rng)]
    out["test"] = test.iloc[np.sort(np.concatenate([np.flatnonzero(in_bt), extra]))]
    return {k: df.reset_index(drop=True) for k, df in out.items()}


def multi_label_splits(single: dict[str, pd.DataFrame], scale: float, seed: int) -> dict[str, pd.DataFrame]:
    """The MICCAI 2023 files over the same images, plus a share of the multi-finding ones."""
    rng = np.random.default_rng([seed, 2])
    ml = {s: bundled(f"miccai2023_nih-cxr-lt_labels_{s}.csv") for s in ("val", "test")}
    all_single = set(bundled("nih-cxr-lt_image_ids.csv")["id"])
    every = sorted(set(bundled("train_val_list.txt")) | set(bundled("test_list.txt")))
    ml_train_ids = np.array(sorted(set(every) - set(ml["val"]["id"]) - set(ml["test"]["id"])))
    kept = pd.concat(single.values(), ignore_index=True)
    kept_labels = dict(zip(kept["id"], _onehot(kept, NIH_CLASSES)))
    real = pd.concat(ml.values(), ignore_index=True)
    real_labels = dict(zip(real["id"], _onehot(real, ML_CLASSES)))
    pool = np.stack([v for v in real_labels.values() if v.sum() > 1])
    out = {}
    splits = {"train": ml_train_ids, "val": ml["val"]["id"].to_numpy(), "test": ml["test"]["id"].to_numpy()}
    for split, ids in splits.items():
        ours = [i for i in ids if i in kept_labels]
        others = np.array([i for i in ids if i not in all_single])
        n_extra = len(others) if scale >= 1 else int(round(scale * len(others)))
        extra = np.sort(rng.choice(others, size=n_extra, replace=False)) if n_extra else np.array([], dtype=str)
        rows = [real_labels.get(i, kept_labels.get(i)) for i in ours]
        rows += [real_labels[i] if i in real_labels else pool[rng.integers(len(pool))] for i in extra]
        ids_out = np.concatenate([np.array(ours, dtype=str), extra.astype(str)])
        order = np.argsort(ids_out, kind="stable")
        df = pd.DataFrame(np.stack(rows)[order].astype(str) if rows else None, columns=ML_CLASSES)
        df.insert(0, "id", ids_out[order])
        df["subj_id"] = [i[:8] for i in df["id"]]
        out[split] = df
    return out


def folder_of(image_id: str, position: dict[str, int]) -> str:
    pos = position[image_id]
    return f"images_{1 if pos < FIRST_FOLDER else 2 + (pos - FIRST_FOLDER) // PER_FOLDER:03d}"


def _render_job(job):
    path, image_id, labels, size, seed = job
    if Path(path).exists():
        return
    rng = np.random.default_rng([seed, int(image_id.split(".")[0].replace("_", ""))])
    img = Image.fromarray(render(np.asarray(labels), NO_FINDING, size, rng), mode="L")
    with atomic_file(Path(path)) as f:
        img.save(f, "PNG", compress_level=6)


def synth(out: Path, scale: float = 1.0, image_size: int = 1024, seed: int = 0, workers: int = 1) -> dict:
    """Write labels/ and images_NNN/images/*.png under ``out``; rerunning skips images already there."""
    out = Path(out)
    if not 0 < scale <= 1:
        raise IngestError(f"--scale {scale}: the fraction of every split to keep must be in (0, 1]")
    if image_size < 1:
        raise IngestError(f"--image-size {image_size}: must be at least 1 pixel")
    single = single_label_splits(scale, seed)
    multi = multi_label_splits(single, scale, seed)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for name, df in single.items():
        write_atomic(out / "labels" / f"nih-cxr-lt_single-label_{name}.csv", df.to_csv(index=False))
    for name, df in multi.items():
        write_atomic(out / "labels" / f"miccai2023_nih-cxr-lt_labels_{name}.csv", df.to_csv(index=False))
    labels = {}
    for df, cols in [(d, ML_CLASSES) for d in multi.values()] + [(d, NIH_CLASSES) for d in single.values()]:
        labels.update(zip(df["id"], _onehot(df, cols)))
    every = sorted(set(bundled("train_val_list.txt")) | set(bundled("test_list.txt")))
    position = {i: k for k, i in enumerate(every)}
    jobs = []
    for image_id in sorted(labels):
        folder = out / folder_of(image_id, position) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((str(folder / image_id), image_id, labels[image_id].tolist(), image_size, seed))
    info = {"scale": scale, "image_size": image_size, "seed": seed, "images": len(jobs),
            "single_label": {k: len(v) for k, v in single.items()},
            "multi_label": {k: len(v) for k, v in multi.items()}}
    write_atomic(out / MARKER, json.dumps(info, indent=1))  # before any pixel, so a partial set is marked too
    progress = Progress(len(jobs), "synth")
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_render_job, jobs, chunksize=8):
                progress.update()
    else:
        for job in jobs:
            _render_job(job)
            progress.update()
    progress.close()
    return info
