import numpy as np
import pytest

from train.methods.weighting import DeferredReweighting, class_weights

COUNTS = np.array([45439, 6941, 800, 49, 7])


def test_none_is_all_ones():
    assert class_weights("none", COUNTS).tolist() == [1.0] * 5


def test_rw_times_counts_sums_to_n():
    w = class_weights("rw", COUNTS)
    assert np.isclose((w * COUNTS).sum(), COUNTS.sum())
    assert np.allclose(w, COUNTS.sum() / (5 * COUNTS))


def test_cb_sums_to_c_and_matches_the_formula():
    w = class_weights("cb", COUNTS, beta=0.9999)
    raw = (1 - 0.9999) / (1 - 0.9999 ** COUNTS)
    assert np.isclose(w.sum(), 5) and np.allclose(w, raw / raw.sum() * 5)


def test_cb_tends_to_uniform_as_beta_goes_to_0_and_to_inverse_frequency_as_beta_goes_to_1():
    assert np.allclose(class_weights("cb", COUNTS, beta=1e-9), 1.0)
    inv = 1 / COUNTS
    assert np.allclose(class_weights("cb", COUNTS, beta=1 - 1e-10), inv / inv.sum() * 5, rtol=1e-3)


def test_unknown_scheme_and_empty_class_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="none, rw, cb$"):
        class_weights("inverse", COUNTS)
    with pytest.raises(ValueError, match="positive"):
        class_weights("rw", [10, 0])


def test_drw_gives_ones_and_full_lr_before_its_epoch_then_the_weights_and_scaled_lr():
    drw = DeferredReweighting(class_weights("rw", COUNTS), start_epoch=10, lr_factor=0.1)
    assert drw.weights_at(9).tolist() == [1.0] * 5 and drw.lr_scale_at(9) == 1.0
    assert np.array_equal(drw.weights_at(10), drw.weights) and drw.lr_scale_at(10) == 0.1
