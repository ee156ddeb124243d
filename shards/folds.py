"""Patient-grouped splits: every image of a patient on one side, deterministic by seed.

Patients are shuffled by the seed and cut in that order by their cumulative image count, so each part gets
its share of the images (as close as whole patients allow). The val and test splits a release lacks
(``ingest``) and the K folds of ``train fit --folds`` are both made here.
"""
import dataclasses
import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
FOLD_OUT = "unused"  # the split of the shards' own val rows in a fold run: neither trained on nor validated


def patient_parts(patients, shares, seed: int) -> np.ndarray:
    """The part (0 .. len(shares) - 1) of every row; ``shares`` sum to 1."""
    patients = pd.Series(np.asarray(patients, dtype=str))
    sizes = patients.value_counts().sort_index()  # sorted first: the order does not depend on the rows' order
    order = sizes.index.to_numpy()[np.random.default_rng([seed, 7]).permutation(len(sizes))]
    counts = sizes[order].to_numpy()
    start = np.cumsum(counts) - counts  # images before each patient
    bounds = np.cumsum(shares)[:-1] * counts.sum()
    part = np.searchsorted(bounds, start + counts / 2, side="right")  # by the patient's middle image
    return patients.map(dict(zip(order, part))).to_numpy()


def patient_folds(patients, k: int, seed: int) -> np.ndarray:
    """The fold (0 .. k - 1) of every row: k patient-disjoint folds of about equal images."""
    return patient_parts(patients, [1 / k] * k, seed)


def with_fold(ss, k: int, fold: int, seed: int):
    """A ShardSet (``shards.reader``) whose val split is fold ``fold`` of k patient-grouped folds of its training
    images and whose train split is the other folds; the shards' own val rows are set aside, test is untouched."""
    index = ss.index.copy()
    split = index["split"].to_numpy(copy=True)
    train = np.flatnonzero(split == "train")
    folds = patient_folds(index["patient_id"].to_numpy()[train], k, seed)
    split[split == "val"] = FOLD_OUT
    split[train[folds == fold]] = "val"
    index["split"] = split
    log.info("fold %d of %d (seed %d): %d images train, %d validate; the shards' val is left out", fold, k, seed,
             int((folds != fold).sum()), int((folds == fold).sum()))
    return dataclasses.replace(ss, index=index)
