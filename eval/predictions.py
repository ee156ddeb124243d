"""Saved predictions: one parquet per split with key, patient_id, label and the logits."""
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shards.atomic import commit, tmp_path
from shards.errors import UsageError


@dataclass(frozen=True)
class Predictions:
    keys: np.ndarray
    patients: np.ndarray
    labels: np.ndarray
    logits: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def write_predictions(path: Path, keys, patients, labels, logits: np.ndarray) -> None:
    logits = np.asarray(logits, dtype=np.float32)
    table = pa.table({"key": pa.array(list(keys), pa.string()), "patient_id": pa.array(list(patients), pa.string()),
                      "label": pa.array(np.asarray(labels), pa.int16()),
                      "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), logits.shape[1])})
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
        raise UsageError(f"{path} is missing; rerun the run's fit command (it rewrites the predictions)") from None
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"{path} is damaged ({e}); rerun the fit command into a new --out") from None


def read_predictions(path: Path) -> Predictions:
    with _reading(path):
        df = pd.read_parquet(path, columns=["key", "patient_id", "label", "logits"])
    return Predictions(df["key"].to_numpy(), df["patient_id"].to_numpy(), df["label"].to_numpy().astype(np.int64),
                       np.stack(df["logits"].to_numpy()).astype(np.float64))


def count_predictions(path: Path) -> int:
    """The number of images in a predictions file, from its footer."""
    with _reading(path):
        return pq.read_metadata(path).num_rows
