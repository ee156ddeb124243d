"""Saved predictions: one parquet per split with key, patient_id, label and the logits."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shards.atomic import commit, tmp_path


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


def read_predictions(path: Path) -> Predictions:
    df = pd.read_parquet(path)
    return Predictions(df["key"].to_numpy(), df["patient_id"].to_numpy(), df["label"].to_numpy().astype(np.int64),
                       np.stack(df["logits"].to_numpy()).astype(np.float64))
