import numpy as np
import torch

from train.methods.losses import make_loss
from train.methods.mixing import balanced_mixup, mixup, no_mix

X = torch.arange(24, dtype=torch.float32).reshape(4, 6)
Y = torch.tensor([0, 1, 2, 3])


def test_mixup_with_an_explicit_permutation_is_the_exact_convex_combination():
    perm = [2, 0, 3, 1]
    x, y_a, y_b, lam = mixup(X, Y, 0.2, np.random.default_rng(0), perm=perm)
    assert torch.allclose(x, lam * X + (1 - lam) * X[perm])
    assert torch.equal(y_a, Y) and torch.equal(y_b, Y[perm]) and 0 <= lam <= 1


def test_mixup_is_reproducible_from_the_rng_state():
    a = mixup(X, Y, 0.2, np.random.default_rng(5))
    b = mixup(X, Y, 0.2, np.random.default_rng(5))
    assert a[3] == b[3] and torch.equal(a[0], b[0])


def test_balanced_mixup_mixes_two_different_batches_with_beta_alpha_1():
    xb, yb = -X, torch.tensor([3, 3, 2, 1])
    rng = np.random.default_rng(1)
    lam_b = np.random.default_rng(1).beta(0.2, 1.0)
    x, y_a, y_b, lam = balanced_mixup(X, Y, xb, yb, 0.2, rng)
    assert np.isclose(lam, 1 - lam_b)
    assert torch.allclose(x, lam * X + (1 - lam) * xb)
    assert torch.equal(y_a, Y) and torch.equal(y_b, yb)


def test_no_mix_is_lam_1_and_the_loss_is_the_plain_loss():
    x, y_a, y_b, lam = no_mix(X, Y)
    loss = make_loss("ce", [10, 10, 10, 10])
    logits = torch.randn(4, 4)
    assert lam == 1.0 and x is X
    assert torch.equal(loss(logits, (y_a, y_b, lam)), loss(logits, Y))
