"""Patient-grouped splits: every image of a patient on one side, deterministic by seed.

Patients are shuffled by the seed and cut in that order by their cumulative image count, so each part gets
its share of the images (as close as whole patients allow). The val and test splits a release lacks
(``ingest``) and the K folds of ``train fit --folds`` are both made here.
"""
import numpy as np
import pandas as pd


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
