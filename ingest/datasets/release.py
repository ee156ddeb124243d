"""A release read from its label tables: one CSV per split (or one CSV with a split column), class columns in
the release's order, optional study, view and image-path columns, and the splits it lacks made by a seeded
patient-grouped split of its training rows. CXR-LT 2024, CXR-LT 2026 and ``--dataset csv`` are Releases.

A record has the columns of ``ingest.adapters`` (image_id, key, patient_id, split, balanced_test, label,
labels, path, label_row) plus study_id and view, and ``mask`` where uncertain labels are ignored.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shards.folds import patient_parts
from shards.format import group_of
from shards.index import class_counts
from shards.writer import file_sha256

from .. import IngestError
from ..adapters import _check_keys, _check_patients, _key, _norm, _safe_relpath

SPLIT_NAMES = ("train", "val", "test")
# how a label cell reads: 1 positive, 0 negative (a blank cell is "not mentioned", a negative, as CheXpert
# defines it), -1 uncertain (CheXpert / MIMIC-CXR); "1.0" and the like as pandas writes floats
VALUES = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "": 0, "-1": -1, "-1.0": -1}
UNCERTAIN = ("zeros", "ones", "ignore")


@dataclass(frozen=True)
class Release:
    name: str
    files: dict                  # label file name -> its split, or None: the split column says
    class_names: list
    id_col: str
    patient_col: str
    path_col: str | None = None  # image path relative to --images; None: found by the id's file name
    study_col: str | None = None
    view_col: str | None = None
    split_col: str | None = None
    labels_column: str | None = None   # one column of "|"-separated class names instead of class columns
    ignored_cols: tuple = ()     # columns the files may hold that are not used (another task's classes ...)
    required: tuple = ()         # files that must be there (default: the first)
    multi_label: bool = True
    uncertain: str | None = None  # None: cells are 0 or 1; zeros | ones | ignore: -1 (and blank) allowed
    val_fraction: float = 0.1    # of the training patients, when no file or split value gives a val split
    test_fraction: float = 0.1   # likewise for test
    split_seed: int = 0
    key_from_path: bool = False  # the shard key from the whole path (CheXpert's view1_frontal.jpg repeats)
    strict_columns: bool = True  # False: columns that are neither classes nor named are left alone (a spec's CSV)
    spec: str | None = None      # the spec that described it (--dataset csv): hashed, and copied into the shards

    @property
    def single_label(self) -> bool:
        return not self.multi_label

    @property
    def group_rule(self) -> str:
        return (f"training counts of the release's training rows ({', '.join(self.train_files())}, all of them, "
                f"before any val or test split is taken from them): head > 1000, medium 100-1000, tail < 100")

    def train_files(self) -> list[str]:
        return [f for f, s in self.files.items() if s in ("train", None)]

    def groups(self, index: pd.DataFrame, facts: dict) -> list[str]:
        """By the training counts of the release: train plus the splits made from it (``facts["group_splits"]``)."""
        counts = sum(class_counts(index, len(self.class_names), s) for s in facts["group_splits"])
        return [group_of(int(n)) for n in counts]

    def read(self, labels_dir: Path) -> tuple[pd.DataFrame, dict, dict]:
        """All records, validated; the sha256 of every label file read; the facts the manifest records (which
        splits were made from the training rows, with what fractions and seed)."""
        labels_dir = Path(labels_dir)
        required = self.required or (next(iter(self.files)),)
        missing = [f for f in required if not (labels_dir / f).is_file()]
        if missing:
            raise IngestError(f"{labels_dir}: missing label file(s) {missing}; a {self.name} labels dir holds "
                              f"{list(self.files)} ({', '.join(required)} required)")
        parts, hashes = [], {}
        for name, split in self.files.items():
            if (labels_dir / name).is_file():
                parts.append(self._read_file(labels_dir / name, split))
                hashes[name] = file_sha256(labels_dir / name)
        records = pd.concat(parts, ignore_index=True)
        seen = records["image_id"].duplicated(keep=False)
        if seen.any():
            rows = records.loc[seen, "label_row"].head(2).tolist()
            raise IngestError(f"id {records['image_id'][seen].iloc[0]!r} is listed twice ({' and '.join(rows)}); "
                              f"an image belongs to exactly one row of one split")
        _check_patients(records, None)
        made = self._make_splits(records)
        records["key"] = [self._key(r) for r in records.itertuples()]
        _check_keys(records)
        records["balanced_test"] = False
        facts = {"group_splits": ["train", *made], "group_rule": self.group_rule}
        if self.spec:
            hashes[Path(self.spec).name] = facts["spec_sha256"] = file_sha256(self.spec)
            facts["spec"] = Path(self.spec).name
        if made:
            facts["made_splits"] = {"splits": made, "val_fraction": self.val_fraction,
                                    "test_fraction": self.test_fraction, "seed": self.split_seed,
                                    "rule": "patient-grouped (shards.folds.patient_parts)"}
        return records, hashes, facts

    def _key(self, row) -> str:
        if not self.key_from_path:
            return _key(row.image_id)
        return re.sub(r"[^A-Za-z0-9_-]", "_", str(row.path).rsplit(".", 1)[0])

    def _make_splits(self, records: pd.DataFrame) -> list[str]:
        """Val and test from the training patients where the release has none; which were made."""
        wanted = {"val": self.val_fraction, "test": self.test_fraction}
        make = [s for s, f in wanted.items() if f > 0 and not (records["split"] == s).any()]
        if not make:
            return []
        train = (records["split"] == "train").to_numpy()
        shares = [1 - sum(wanted[s] for s in make), *(wanted[s] for s in make)]
        part = patient_parts(records.loc[train, "patient_id"], shares, self.split_seed)
        records.loc[train, "split"] = np.array(["train", *make])[part]
        return make

    def _read_file(self, path: Path, split: str | None) -> pd.DataFrame:
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise IngestError(f"{path}: not a readable CSV ({e})") from e
        meta = [c for c in (self.id_col, self.patient_col, self.path_col, self.study_col, self.view_col,
                            self.split_col, self.labels_column) if c]
        absent = [c for c in dict.fromkeys(meta) if c not in df.columns]
        if absent:
            raise IngestError(f"{path}: no column {absent[0]!r}; a {self.name} label file has the columns "
                              f"{', '.join(dict.fromkeys(meta))} and the {len(self.class_names)} class columns")
        label_row = [f"{path.name}, row {r + 2}" for r in range(len(df))]
        values = self._label_values(path, df, label_row)
        for col in (self.id_col, self.patient_col):
            blank = np.flatnonzero(df[col].str.strip().eq("").to_numpy())
            if len(blank):
                raise IngestError(f"{label_row[blank[0]]}: empty {col!r}; every row needs an image id and a patient")
        out = pd.DataFrame({
            "image_id": df[self.id_col].to_numpy(), "patient_id": df[self.patient_col].to_numpy(),
            "split": df[self.split_col].map(lambda v: v.strip().lower()).to_numpy() if self.split_col else split,
            "label_row": label_row,
            "path": [_safe_relpath(path, p) for p in df[self.path_col]] if self.path_col else None,
            "study_id": df[self.study_col].to_numpy() if self.study_col else "",
            "view": df[self.view_col].to_numpy() if self.view_col else "",
        })
        if self.split_col:
            bad = np.flatnonzero(~out["split"].isin(SPLIT_NAMES).to_numpy())
            if len(bad):
                raise IngestError(f"{label_row[bad[0]]}: split {df[self.split_col].iloc[bad[0]]!r} in column "
                                  f"{self.split_col!r}; the values are train, val and test")
        return self._with_labels(out, values, label_row)

    def _label_values(self, path: Path, df: pd.DataFrame, label_row: list[str]) -> np.ndarray:
        """(N, C) int8 of 1, 0 and -1 (uncertain), every cell checked."""
        if self.labels_column:
            return self._from_names(df[self.labels_column], label_row)
        cols = self._class_columns(path, list(df.columns))
        cells = df[cols].apply(lambda c: c.str.strip())
        allowed = VALUES if self.uncertain else {"1": 1, "0": 0}
        bad = ~cells.isin(list(allowed)).to_numpy()
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise IngestError(f"{label_row[r]}: {cols[c]!r} is {cells.iat[r, c]!r}; class values must be "
                              + ("1, 0, -1 (uncertain) or blank (not mentioned: 0)" if self.uncertain else "0 or 1")
                              + ("" if self.uncertain else " (a spec's `uncertain:` allows -1 and blanks)"))
        return np.vectorize(allowed.get, otypes=[np.int8])(cells.to_numpy()) if len(cells) else \
            np.zeros((0, len(cols)), np.int8)

    def _class_columns(self, path: Path, columns: list[str]) -> list[str]:
        meta = {self.id_col, self.patient_col, self.path_col, self.study_col, self.view_col, self.split_col,
                *self.ignored_cols} - {None}
        by_norm = {_norm(c): c for c in columns if c not in meta}
        wanted = {_norm(c) for c in self.class_names}
        unknown = [c for n, c in by_norm.items() if n not in wanted] if self.strict_columns else []
        missing = [c for c in self.class_names if _norm(c) not in by_norm]
        if unknown or missing:
            raise IngestError(f"{path}: unknown columns {unknown} / missing class columns {missing}; {self.name} "
                              f"has the classes {self.class_names}")
        return [by_norm[_norm(c)] for c in self.class_names]

    def _from_names(self, column: pd.Series, label_row: list[str]) -> np.ndarray:
        position = {_norm(c): i for i, c in enumerate(self.class_names)}
        out = np.zeros((len(column), len(self.class_names)), np.int8)
        for r, text in enumerate(column):
            for name in filter(None, (n.strip() for n in text.split("|"))):
                if _norm(name) not in position:
                    raise IngestError(f"{label_row[r]}: class {name!r} in {self.labels_column!r} is not one of "
                                      f"the classes {self.class_names}")
                out[r, position[_norm(name)]] = 1
        return out

    def _with_labels(self, out: pd.DataFrame, values: np.ndarray, label_row: list[str]) -> pd.DataFrame:
        uncertain = values == -1
        labels = np.where(uncertain, 1 if self.uncertain == "ones" else 0, values).astype(np.int8)
        if self.single_label:
            n = labels.sum(axis=1)
            wrong = np.flatnonzero(n != 1)
            if len(wrong):
                r = int(wrong[0])
                raise IngestError(f"{label_row[r]}: a single-label file needs exactly one class per row, found "
                                  f"{int(n[r])} ({len(wrong)} such rows); set `multi_label: true` in the spec if "
                                  f"images may have several")
        out["label"] = labels.argmax(axis=1) if self.single_label else -1
        out["labels"] = list(labels)
        if self.uncertain == "ignore":
            out["mask"] = list((~uncertain).astype(np.int8))
        return out
