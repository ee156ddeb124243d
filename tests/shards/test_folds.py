import numpy as np
import pytest

from shards.folds import patient_folds, patient_parts


def patients(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return np.repeat([f"p{i}" for i in range(n)], rng.integers(1, 5, n))


def test_folds_are_patient_disjoint_cover_every_row_and_are_about_equal():
    p = patients()
    folds = patient_folds(p, 5, seed=0)
    assert set(folds) == set(range(5))
    for patient in np.unique(p):
        assert len(set(folds[p == patient])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 8  # whole patients of at most 4 images at each of the 4 cuts


def test_folds_depend_on_the_seed_and_not_on_the_rows_order():
    p = patients()
    a, b = patient_folds(p, 5, 0), patient_folds(p, 5, 1)
    assert not np.array_equal(a, b)
    order = np.random.default_rng(1).permutation(len(p))
    assert np.array_equal(patient_folds(p[order], 5, 0), a[order])


@pytest.mark.parametrize("shares", [[0.8, 0.1, 0.1], [0.5, 0.5], [0.9, 0.1]])
def test_parts_take_their_share_of_the_images(shares):
    p = patients(1000)
    parts = patient_parts(p, shares, seed=2)
    assert np.allclose(np.bincount(parts, minlength=len(shares)) / len(p), shares, atol=0.01)
