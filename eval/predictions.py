"""Saved predictions: one parquet per split with key, patient_id, the label(s) and the logits.

The schema's metadata holds ``class_names`` (JSON), the logits' columns. Single-label files hold ``label``
(int16, the class index); multi-label files hold ``labels`` (a fixed-size list of int8, the multi-hot row).
Which one a file holds says its task.
"""
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shards.atomic import atomic_file, make_dir
from shards.errors import UsageError


ALTERED = "the file was altered or is damaged; rerun the run's fit command into a new --out"


@dataclass(frozen=True)
class Predictions:
    keys: np.ndarray
    patients: np.ndarray
    labels: np.ndarray          # (N,) class indices, or (N, C) multi-hot; int64
    logits: np.ndarray

    @property
    def multi_label(self) -> bool:
        return self.labels.ndim == 2

    @property
    def predicted(self) -> np.ndarray:
        """The top class of each image (single-label only: a multi-label image has no one predicted class)."""
        if self.multi_label:
            raise ValueError("predicted is for single-label predictions; threshold the multi-label scores")
        return self.logits.argmax(axis=1)


def _fixed_size_list(values: np.ndarray, value_type) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), value_type), values.shape[1])


def write_predictions(path: Path, keys, patients, labels, logits: np.ndarray, class_names=None) -> None:
    """``labels``: class indices (N,) or multi-hot rows (N, C); ``class_names`` (the logits' columns) go in the
    schema's metadata as JSON (``class_names``), for readers without the run's files."""
    logits, labels = np.asarray(logits, dtype=np.float32), np.asarray(labels)
    label_column = (("labels", _fixed_size_list(labels.astype(np.int8), pa.int8())) if labels.ndim == 2
                    else ("label", pa.array(labels, pa.int16())))
    table = pa.table({"key": pa.array(list(keys), pa.string()), "patient_id": pa.array(list(patients), pa.string()),
                      label_column[0]: label_column[1], "logits": _fixed_size_list(logits, pa.float32())})
    if class_names is not None:
        table = table.replace_schema_metadata({"class_names": json.dumps(list(class_names))})
    path = Path(path)
    make_dir(path.parent)
    with atomic_file(path) as f:
        pq.write_table(table, f)


@contextmanager
def _reading(path: Path):
    """A damaged or missing file is a UsageError naming it (the run's files are the user's to fix)."""
    try:
        yield
    except FileNotFoundError:
        run = Path(path).parent.parent
        raise UsageError(f"{path} is missing; to write it again, move {run / 'summary.json'} aside and rerun the "
                         f"run's fit command (it evaluates best.pt again; nothing is trained)") from None
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"{path} is damaged ({e}); rerun the fit command into a new --out") from None


def _rows(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column as an (N, width) array (a plain list column of equal lengths too)."""
    column = column.combine_chunks()
    if not pa.types.is_fixed_size_list(column.type):
        return np.array(column.to_pylist(), dtype=np.float64).reshape(len(column), -1)  # ragged: ValueError
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)


def read_predictions(path: Path, num_classes: int | None = None) -> Predictions:
    """The file's predictions; with ``num_classes``, also checked: rows, distinct keys, finite logits of that
    width, labels in range. A file that fails is a UsageError naming it (numbers from it would be wrong)."""
    with _reading(path):
        multi = "labels" in pq.read_schema(path).names
        table = pq.read_table(path, columns=["key", "patient_id", "labels" if multi else "label", "logits"])
    try:
        labels = _rows(table["labels"]) if multi else table["label"].to_numpy()
        p = Predictions(table["key"].to_numpy(zero_copy_only=False),
                        table["patient_id"].to_numpy(zero_copy_only=False), labels.astype(np.int64),
                        _rows(table["logits"]).astype(np.float64))
    except (ValueError, TypeError, pa.ArrowException) as e:
        raise UsageError(f"{path}: not a predictions file of this tool ({str(e)[:100]}); {ALTERED}") from None
    if num_classes is not None:
        check_predictions(path, p, num_classes)
    return p


def check_predictions(path: Path, p: Predictions, num_classes: int) -> None:
    n = len(p.keys)
    problem = None
    if n == 0:
        problem = "no rows (an empty split has no numbers)"
    elif len(set(p.keys.tolist())) != n:
        keys, counts = np.unique(p.keys.astype(str), return_counts=True)
        problem = f"key {keys[counts > 1][0]!r} appears more than once"
    elif p.logits.shape[1] != num_classes:
        problem = f"logits of width {p.logits.shape[1]}, the run has {num_classes} classes"
    elif not np.isfinite(p.logits).all():
        problem = f"{int((~np.isfinite(p.logits)).any(axis=1).sum())} rows with NaN or infinite logits"
    elif p.multi_label and (p.labels.shape[1] != num_classes or not np.isin(p.labels, (0, 1)).all()):
        problem = f"labels that are not {num_classes} 0/1 values a row"
    elif not p.multi_label and not ((p.labels >= 0) & (p.labels < num_classes)).all():
        problem = f"label {p.labels[(p.labels < 0) | (p.labels >= num_classes)][0]} outside 0..{num_classes - 1}"
    if problem:
        raise UsageError(f"{path}: {problem}; {ALTERED}")


def count_predictions(path: Path) -> int:
    """The number of images in a predictions file, from its footer."""
    with _reading(path):
        return pq.read_metadata(path).num_rows
