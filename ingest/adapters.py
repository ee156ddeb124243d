"""Source adapters: a dataset's label files -> one validated record per image.

Each adapter is plain data (file names per split, column names, classes); one
reader validates them all. A record has image_id, key, patient_id, split
(train | val | test), balanced_test, label (class index, -1 for multi-label),
labels (multi-hot) and path (relative to the image root, or None = search).
"""
import csv
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from shards.format import group_of, key_for
from shards.writer import file_sha256

from . import IngestError

log = logging.getLogger(__name__)

# The benchmark's published training counts (FACTS.md), in label-file column order.
NIH_CLASSES = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis",
               "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax",
               "Pneumoperitoneum", "Pneumomediastinum", "Subcutaneous Emphysema", "Tortuous Aorta",
               "Calcification of the Aorta", "No Finding"]
NIH_TRAIN_COUNTS = dict(zip(NIH_CLASSES, [3135, 800, 868, 435, 2875, 229, 519, 49, 6941, 1665, 2036, 811, 213,
                                          1485, 59, 7, 32, 339, 121, 45439]))
MIMIC_CLASSES = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
                 "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other",
                 "Pneumonia", "Pneumothorax", "Support Devices", "Pneumoperitoneum", "Pneumomediastinum",
                 "Subcutaneous Emphysema", "Tortuous Aorta", "Calcification of the Aorta"]


@dataclass(frozen=True)
class Adapter:
    name: str
    files: dict                # label file name -> (split, is the balanced-test subset)
    id_col: str
    patient_col: str
    class_names: list
    single_label: bool
    path_col: str | None = None      # image path relative to --images; None: find by file name
    published_counts: dict | None = None  # fixes head/medium/tail whatever the scale

    def groups(self, train_counts: np.ndarray) -> list[str]:
        counts = [self.published_counts[c] for c in self.class_names] if self.published_counts else train_counts
        return [group_of(int(n)) for n in counts]


def _nih_single(split_file):
    return {f"nih-cxr-lt_single-label_{s}.csv": v for s, v in split_file.items()}


ADAPTERS = {a.name: a for a in [
    Adapter("nih-cxr-lt",
            _nih_single({"train": ("train", False), "balanced-val": ("val", False), "test": ("test", False),
                         "balanced-test": ("test", True)}),
            "id", "subject_id", NIH_CLASSES, True, published_counts=NIH_TRAIN_COUNTS),
    Adapter("nih-cxr-lt-multilabel",
            {f"miccai2023_nih-cxr-lt_labels_{s}.csv": (s, False) for s in ("train", "val", "test")},
            "id", "subj_id", NIH_CLASSES, False, published_counts=NIH_TRAIN_COUNTS),
    Adapter("mimic-cxr-lt",
            {f"mimic-cxr-lt_single-label_{s}.csv": v for s, v in
             {"train": ("train", False), "balanced-val": ("val", False), "test": ("test", False),
              "balanced-test": ("test", True)}.items()},
            "dicom_id", "subject_id", MIMIC_CLASSES, True, path_col="path"),
    # PruneCXR's multi-label release (Holste et al. 2023, arXiv 2308.09180): same columns and classes as the
    # single-label files, splits train/val/test. No multi-label MIMIC counts are published in our facts, so
    # head/medium/tail come from the training positives of the files read.
    Adapter("mimic-cxr-lt-multilabel",
            {f"miccai2023_mimic-cxr-lt_labels_{s}.csv": (s, False) for s in ("train", "val", "test")},
            "dicom_id", "subject_id", MIMIC_CLASSES, False, path_col="path"),
]}


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise IngestError(f"unknown dataset {name!r}; one of: {', '.join(ADAPTERS)}")
    return ADAPTERS[name]


def _norm(col: str) -> str:
    return col.strip().lower().replace("_", " ")


def _header(path: Path) -> list[str]:
    """The first row as written (pandas renames a repeated column 'Mass' to 'Mass.1')."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (UnicodeDecodeError, csv.Error):
        return []  # pandas names what is wrong with it


def _check_repeated_columns(path: Path, header: list[str]) -> None:
    """Two columns of one class (``Mass`` twice, ``MASS`` beside ``Mass``, ``Pleural Thickening`` beside
    ``Pleural_Thickening``): keeping either would silently drop the other's labels."""
    seen = {}
    for col in header:
        if _norm(col) in seen:
            raise IngestError(f"{path}: columns {seen[_norm(col)]!r} and {col!r} name the same column "
                              f"({_norm(col)!r}); keep one of them (the one with the labels you mean)")
        seen[_norm(col)] = col


def _class_columns(adapter: Adapter, path: Path, columns: list[str]) -> list[str]:
    """The file's class columns in the adapter's class order; unknown or missing ones are errors."""
    meta = {adapter.id_col, adapter.patient_col, adapter.path_col, "study_id", "subject_id"} - {None}
    by_norm = {_norm(c): c for c in columns if c not in meta}
    wanted = {_norm(c) for c in adapter.class_names}
    unknown = [c for n, c in by_norm.items() if n not in wanted]
    missing = [c for c in adapter.class_names if _norm(c) not in by_norm]
    for col in (adapter.id_col, adapter.patient_col, adapter.path_col):
        if col and col not in columns:
            raise IngestError(f"{path}: no column {col!r}; a {adapter.name} label file has columns "
                              f"{adapter.id_col}, the {len(adapter.class_names)} classes, {adapter.patient_col}")
    if unknown or missing:
        raise IngestError(f"{path}: unknown class columns {unknown} / missing class columns {missing}; "
                          f"{adapter.name} has the classes {adapter.class_names}. Use the benchmark's label "
                          f"files or pass the matching --dataset")
    return [by_norm[_norm(c)] for c in adapter.class_names]


def _read_file(adapter: Adapter, path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise IngestError(f"{path}: not a readable CSV ({str(e).strip().splitlines()[0]})") from None
    _check_repeated_columns(path, _header(path))
    cols = _class_columns(adapter, path, list(df.columns))
    values = df[cols]
    bad = ~values.isin(["0", "1"]).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise IngestError(f"{path}, row {row + 2}: class values must be 0 or 1, got "
                          f"{values.iloc[row].tolist()}")
    labels = values.to_numpy().astype(np.int8)
    if not adapter.single_label:
        _warn_odd_rows(adapter, path, df[adapter.id_col], labels)
    if adapter.single_label:
        wrong = np.flatnonzero(labels.sum(axis=1) != 1)
        if len(wrong):
            r = int(wrong[0])
            raise IngestError(f"{path}, row {r + 2} (id {df[adapter.id_col].iloc[r]}): a single-label file needs "
                              f"exactly one 1 per row, found {int(labels[r].sum())} ({len(wrong)} such rows). "
                              f"Fix the row, or use --dataset {adapter.name}-multilabel for multi-label files")
    dup = df[adapter.id_col].duplicated(keep=False)
    if dup.any():
        rows = (np.flatnonzero(dup.to_numpy())[:4] + 2).tolist()
        raise IngestError(f"{path}: duplicate id {df[adapter.id_col][dup].iloc[0]!r} (rows {rows}); "
                          f"every image may appear once per file")
    records = pd.DataFrame({
        "image_id": df[adapter.id_col].to_numpy(),
        "patient_id": df[adapter.patient_col].to_numpy(),
        "label": labels.argmax(axis=1) if adapter.single_label else np.full(len(df), -1),
        "labels": list(labels),
        "path": df[adapter.path_col].map(lambda p: _safe_relpath(path, p)).to_numpy() if adapter.path_col else None,
    })
    if "study_id" in df:  # MIMIC-CXR-LT's files name each image's study (eval report --by-study); NIH's do not
        records["study_id"] = df["study_id"].to_numpy()
    return records


def _warn_odd_rows(adapter: Adapter, path: Path, ids: pd.Series, labels: np.ndarray) -> None:
    """The releases give every image a finding or "No Finding", never both: other rows are kept, and named,
    since they usually mean a wrong or edited file."""
    n = labels.sum(axis=1)
    odd = {"no class at all": n == 0}
    if "No Finding" in adapter.class_names:
        odd['"No Finding" and a finding'] = (labels[:, adapter.class_names.index("No Finding")] == 1) & (n > 1)
    for what, rows in odd.items():
        if rows.any():
            first = int(np.flatnonzero(rows)[0])
            log.warning("%s: %d rows with %s (first: row %d, id %s); kept as they are", path, int(rows.sum()), what,
                        first + 2, ids.iloc[first])


def _safe_relpath(label_file: Path, p: str) -> str:
    pp = PurePosixPath(p)
    if pp.is_absolute() or ".." in pp.parts or not p:
        raise IngestError(f"{label_file}: image path {p!r} must be relative to --images, without '..'")
    return p


def read_labels(adapter: Adapter, labels_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """All records of a dataset, validated, and the sha256 of every label file read."""
    labels_dir = Path(labels_dir)
    missing = [f for f in adapter.files if not (labels_dir / f).exists()]
    if missing:
        raise IngestError(f"{labels_dir}: missing label file(s) {missing}; a {adapter.name} labels dir holds "
                          f"{list(adapter.files)}")
    folders = [f for f in adapter.files if not (labels_dir / f).is_file()]
    if folders:
        raise IngestError(f"{labels_dir / folders[0]} is a folder, not a label file; put the CSV file itself there")
    parts, subsets, hashes = [], [], {}
    for name, (split, is_subset) in adapter.files.items():
        df = _read_file(adapter, labels_dir / name)
        hashes[name] = file_sha256(labels_dir / name)
        df["split"] = split
        df["label_row"] = [f"{name}, row {r + 2}" for r in range(len(df))]
        (subsets if is_subset else parts).append((name, df))
    records = pd.concat([df for _, df in parts], ignore_index=True)
    if "study_id" in records:  # a file without the column: its images have no study
        records["study_id"] = records["study_id"].fillna("")
    seen = records["image_id"].duplicated(keep=False)
    if seen.any():
        iid = records["image_id"][seen].iloc[0]
        files = [n for n, df in parts if iid in set(df["image_id"])]
        raise IngestError(f"id {iid!r} is in {files}: an image belongs to exactly one split; fix the label files")
    records["key"] = [_key(i) for i in records["image_id"]]
    _check_keys(records)
    _check_patients(records, parts)
    records["balanced_test"] = False
    for name, sub in subsets:
        in_test = records["split"].eq("test") & records["image_id"].isin(set(sub["image_id"]))
        outside = sorted(set(sub["image_id"]) - set(records["image_id"][in_test]))
        if outside:
            raise IngestError(f"{labels_dir / name}: {len(outside)} ids are not in the test file "
                              f"(first: {outside[0]}); balanced-test must be a subset of test")
        records.loc[in_test, "balanced_test"] = True
    return records, hashes


def _key(image_id: str) -> str:
    try:
        return key_for(image_id)
    except ValueError as e:
        raise IngestError(str(e)) from e


def _check_keys(records: pd.DataFrame) -> None:
    """Two ids with one key (x.png and x.jpg, or one name in two folders) would share one image in the shards."""
    dup = records[records["key"].duplicated(keep=False)]
    if len(dup):
        key = dup["key"].iloc[0]
        both = " and ".join(f"{r.image_id!r} ({r.label_row})" for r in dup[dup["key"] == key].itertuples())
        raise IngestError(f"ids {both} both give the shard key {key!r} (the file name without its extension), so "
                          f"they would share one image; keep one of them in the label files "
                          f"({dup['key'].nunique()} such keys)")


def _check_patients(records: pd.DataFrame, parts) -> None:
    splits_per_patient = records.groupby("patient_id")["split"].nunique()
    leaked = splits_per_patient[splits_per_patient > 1]
    if len(leaked):
        pid = leaked.index[0]
        where = sorted(records.loc[records["patient_id"] == pid, "split"].unique())
        raise IngestError(f"patient {pid} is in the splits {where} ({len(leaked)} such patients): splits must be "
                          f"patient-disjoint, or test results leak from training; fix the label files")


def locate_images(adapter: Adapter, images: Path, records: pd.DataFrame) -> list[Path]:
    """The image file of every record; every missing one is an error naming it."""
    images = Path(images)
    if not images.is_dir():
        raise IngestError(f"--images {images}: no such directory")
    if adapter.path_col:
        paths = [images / p for p in records["path"]]
        missing = [str(p) for p in paths if not p.is_file()]
    else:
        found: dict[str, Path] = {}
        for p in sorted(images.rglob("*")):
            if p.name in found and p.is_file():
                raise IngestError(f"{p.name} is both {found[p.name]} and {p}; keep one copy under --images")
            if p.is_file():
                found[p.name] = p
        paths = [found.get(i) for i in records["image_id"]]
        missing = [i for i, p in zip(records["image_id"], paths) if p is None]
    if missing:
        raise IngestError(f"{len(missing)} listed images are missing under {images} (first: {missing[:3]}); "
                          f"download or unpack them (NIH: images_001..012), or remove them from the label files")
    return paths
