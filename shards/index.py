"""The parquet label index of a shards dir: one row per image, in pack order."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_file
from .errors import UsageError
from .format import FORMAT_VERSION, check_shard_names

META_KEY = b"cxr_lt"
COLUMNS = ("key", "image_id", "patient_id", "split", "balanced_test", "label", "labels",
           "shard", "offset", "size", "sha256")
# Written only by the datasets that have them, so the index of the others stays byte for byte what it was:
# the study and view position of an image (CXR-LT 2024), and ``mask`` (1: the label counts, 0: an uncertain
# label ignored by the multi-label losses and metrics; a CSV spec's ``uncertain: ignore``).
OPTIONAL = ("study_id", "view", "mask")
IGNORED = -1  # the target of a masked entry: losses, samplers and metrics leave it out


def schema(num_classes: int, meta: dict, optional=()) -> pa.Schema:
    types = {"study_id": pa.string(), "view": pa.string(), "mask": pa.list_(pa.int8(), num_classes)}
    return pa.schema([
        ("key", pa.string()), ("image_id", pa.string()), ("patient_id", pa.string()),
        ("split", pa.string()), ("balanced_test", pa.bool_()), ("label", pa.int16()),
        ("labels", pa.list_(pa.int8(), num_classes)),
        ("shard", pa.string()), ("offset", pa.int64()), ("size", pa.int64()), ("sha256", pa.string()),
        *((name, types[name]) for name in optional),
    ], metadata={META_KEY: json.dumps(meta, sort_keys=True).encode()})


def write_index(rows: pd.DataFrame, path: Path, dataset: str, class_names: list[str]) -> None:
    meta = {"format_version": FORMAT_VERSION, "dataset": dataset, "class_names": list(class_names)}
    optional = [c for c in OPTIONAL if c in rows.columns]
    s = schema(len(class_names), meta, optional)
    table = pa.Table.from_pandas(rows[[*COLUMNS, *optional]], schema=s, preserve_index=False)
    with atomic_file(path) as f:
        pq.write_table(table, f, compression="zstd")


def read_index(path: Path) -> tuple[pd.DataFrame, dict]:
    rebuild = "rebuild the shards with `python -m ingest build-shards`"
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:  # missing, truncated or not parquet at all
        raise UsageError(f"{path}: unreadable ({e}); {rebuild}") from e
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise UsageError(f"{path}: not a shards index (no {META_KEY.decode()} metadata); {rebuild}")
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{path}: format version {meta.get('format_version')}, this code reads {FORMAT_VERSION}; "
                         "rebuild the shards with `python -m ingest build-shards`")
    index = table.to_pandas()
    if "shard" in index:
        check_shard_names(index["shard"].unique(), path, Path(path).parent)
    return index, meta


def label_counts(rows: pd.DataFrame, num_classes: int) -> np.ndarray:
    """Images per class among rows (positives per class for multi-label data)."""
    if len(rows) == 0:
        return np.zeros(num_classes, dtype=np.int64)
    return np.stack(rows["labels"].to_numpy()).astype(np.int64).sum(axis=0)


def targets(rows: pd.DataFrame, multi_label: bool) -> np.ndarray:
    """What a model is trained towards: class indices int64 (N,), or for multi-label data the multi-hot
    rows as float32 (N, C), the targets of a sigmoid per class, with ``IGNORED`` where the index masks a label."""
    if multi_label:
        if not len(rows):
            return np.zeros((0, 0), np.float32)
        y = np.stack(rows["labels"].to_numpy()).astype(np.float32)
        if "mask" in rows:
            y[np.stack(rows["mask"].to_numpy()) == 0] = IGNORED
        return y
    return rows["label"].to_numpy().astype(np.int64)


def class_counts(index: pd.DataFrame, num_classes: int, split: str = "train") -> np.ndarray:
    return label_counts(index[index["split"] == split], num_classes)
