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

from shards.atomic import commit, tmp_path
from shards.errors import UsageError


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    pq.write_table(table, tmp)
    commit(tmp, path)


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
    """A fixed-size-list column as an (N, width) array."""
    column = column.combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)


def read_predictions(path: Path) -> Predictions:
    with _reading(path):
        multi = "labels" in pq.read_schema(path).names
        table = pq.read_table(path, columns=["key", "patient_id", "labels" if multi else "label", "logits"])
    labels = _rows(table["labels"]) if multi else table["label"].to_numpy()
    return Predictions(table["key"].to_numpy(zero_copy_only=False), table["patient_id"].to_numpy(zero_copy_only=False),
                       labels.astype(np.int64), _rows(table["logits"]).astype(np.float64))


def count_predictions(path: Path) -> int:
    """The number of images in a predictions file, from its footer."""
    with _reading(path):
        return pq.read_metadata(path).num_rows
