import numpy as np
import pytest

from shards.samplers import SAMPLERS, sample_order

LABELS = np.repeat(np.arange(5), [800, 150, 40, 8, 2])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_and_epoch_same_order_other_epoch_other_order(sampler):
    a = sample_order(sampler, LABELS, seed=3, epoch=1)
    assert np.array_equal(a, sample_order(sampler, LABELS, seed=3, epoch=1))
    assert not np.array_equal(a, sample_order(sampler, LABELS, seed=3, epoch=2))
    assert not np.array_equal(a, sample_order(sampler, LABELS, seed=4, epoch=1))
    assert len(a) == len(LABELS) and a.min() >= 0 and a.max() < len(LABELS)


def test_instance_is_a_permutation():
    order = sample_order("instance", LABELS, 0, 0)
    assert sorted(order.tolist()) == list(range(len(LABELS)))


def test_class_balanced_frequencies_are_uniform_within_binomial_tolerance_and_cover_every_class():
    n = 20000
    order = sample_order("class-balanced", LABELS, 0, 0, num_samples=n)
    freq = np.bincount(LABELS[order], minlength=5)
    sd = np.sqrt(n * 0.2 * 0.8)
    assert (freq > 0).all() and np.all(np.abs(freq - n / 5) < 4 * sd)
    # every image of the rarest class gets drawn
    assert set(order[LABELS[order] == 4]) == set(np.flatnonzero(LABELS == 4))


def test_sqrt_sampler_follows_square_root_of_counts():
    n = 20000
    order = sample_order("sqrt", LABELS, 0, 0, num_samples=n)
    p = np.sqrt([800, 150, 40, 8, 2])
    p = p / p.sum()
    freq = np.bincount(LABELS[order], minlength=5)
    assert np.all(np.abs(freq - n * p) < 4 * np.sqrt(n * p * (1 - p)))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_ranks_get_equal_disjoint_slices_that_rebuild_the_epoch(sampler):
    full = sample_order(sampler, LABELS[:999], 5, 2, world_size=1)
    parts = [sample_order(sampler, LABELS[:999], 5, 2, rank=r, world_size=4) for r in range(4)]
    assert len({len(p) for p in parts}) == 1 and sum(len(p) for p in parts) == 1000  # padded by wrapping
    interleaved = np.stack(parts, axis=1).reshape(-1)
    assert np.array_equal(interleaved[:999], full)


def test_resuming_at_a_position_is_slicing_the_same_order():
    order = sample_order("class-balanced", LABELS, 1, 7)
    assert np.array_equal(sample_order("class-balanced", LABELS, 1, 7)[300:], order[300:])


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(ValueError, match="instance, class-balanced, sqrt"):
        sample_order("random", LABELS, 0, 0)


def test_class_aware_sampling_on_multi_hot_labels_draws_classes_uniformly_and_only_images_that_have_them():
    rng = np.random.default_rng(0)
    multi_hot = np.zeros((400, 4), np.float32)
    multi_hot[:, 0] = 1                                    # a head class every image has
    multi_hot[rng.choice(400, 60, replace=False), 1] = 1
    multi_hot[[3, 9, 27], 2] = 1                           # a tail class of 3 images; class 3 has none
    n = 30000
    order = sample_order("class-balanced", multi_hot, 0, 0, num_samples=n)
    # each draw picks one of the 3 classes with images, then one of its images: image 3 is reached through
    # class 2 (1/3 * 1/3), through class 1 if it has it, and through class 0 (1/3 * 1/400)
    tail = np.isin(order, [3, 9, 27])
    expected = 1 / 3 + 3 * (1 / 3) / 400 + (1 / 3) * multi_hot[[3, 9, 27], 1].sum() / 60
    assert abs(tail.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    assert set(order[tail]) == {3, 9, 27}
    # single-label indices and their one-hot rows draw the same order
    assert np.array_equal(sample_order("class-balanced", LABELS, 5, 2),
                          sample_order("class-balanced", np.eye(5)[LABELS], 5, 2))
