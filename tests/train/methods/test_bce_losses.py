import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from eval.tasks import TASKS
from train.methods.losses import LOSSES, get_loss, make_loss
from train.methods.weighting import class_weights

# a tiny known-answer case: 2 images, 3 classes; positives per class among N = 100 training images
Z = np.array([[1.5, -0.5, -3.5], [0.3, 2.0, -1.0]])
Y = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
COUNTS = np.array([60, 25, 5])
N = 100
W = np.array([0.5, 1.0, 4.0])
MULTI = [name for name, loss in LOSSES.items() if loss.task == "multi-label"]
LINEAR_IN_TARGETS = ["bce", "focal-bce", "asl", "logit-adjusted-bce"]

torch.manual_seed(0)
LOGITS = torch.randn(16, 3) * 3
TARGET = (torch.rand(16, 3) < 0.4).float()


def t(a) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def sig(z):
    return 1 / (1 + np.exp(-z))


def loss_of(name, logits=Z, target=Y, **kw):
    return make_loss(name, COUNTS, num_images=N, **kw)(t(logits), t(target)).item()


def test_bce_is_the_positive_weighted_formula_and_pytorchs_pos_weight():
    p = sig(Z)
    want = -(W * Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean()
    assert np.isclose(loss_of("bce", weights=W), want, atol=1e-6)
    assert np.isclose(loss_of("bce", weights=W), F.binary_cross_entropy_with_logits(t(Z), t(Y), pos_weight=t(W)))
    assert np.isclose(loss_of("bce"), F.binary_cross_entropy_with_logits(t(Z), t(Y)), atol=1e-6)


def test_bce_takes_the_rw_and_cb_weights_of_the_positive_counts():
    for scheme in ("rw", "cb"):
        w = class_weights(scheme, COUNTS)
        want = F.binary_cross_entropy_with_logits(t(Z), t(Y), pos_weight=t(w))
        assert np.isclose(loss_of("bce", weights=w), want, atol=1e-6)


def test_focal_bce_is_the_formula_with_gamma_2_and_weights_on_the_positive_term():
    p = sig(Z)
    want = -(Y * (1 - p) ** 2 * np.log(p) + (1 - Y) * p ** 2 * np.log(1 - p)).mean()
    assert np.isclose(loss_of("focal-bce"), want, atol=1e-6)
    weighted = -(W * Y * (1 - p) ** 2 * np.log(p) + (1 - Y) * p ** 2 * np.log(1 - p)).mean()
    assert np.isclose(loss_of("focal-bce", weights=W), weighted, atol=1e-6)


def test_focal_bce_equals_torchvisions_sigmoid_focal_loss_without_alpha():
    want = sigmoid_focal_loss(LOGITS, TARGET, alpha=-1, gamma=2, reduction="mean")
    assert torch.allclose(make_loss("focal-bce", COUNTS)(LOGITS, TARGET), want, atol=1e-6)


def test_asl_is_the_formula_and_discards_negatives_below_the_clip():
    p = sig(Z)
    pm = np.maximum(p - 0.05, 0)
    assert pm[0, 2] == 0  # p = 0.029: this easy negative contributes nothing
    want = -(Y * np.log(p) + (1 - Y) * pm ** 4 * np.log(1 - pm)).mean()
    assert np.isclose(loss_of("asl"), want, atol=1e-6)


def test_asl_with_gamma_0_and_no_clip_is_bce():
    got = make_loss("asl", COUNTS, gamma_neg=0.0, clip=0.0)(LOGITS, TARGET)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(LOGITS, TARGET), atol=1e-5)


def db_numpy(z, y, gamma=0.0, alpha=0.1, beta=10.0, mu=0.2, lam=5.0, kappa=0.05):
    freq_inv = 1 / COUNTS
    repeat = y @ freq_inv
    with np.errstate(divide="ignore"):
        r = freq_inv[None, :] / repeat[:, None]
    r_hat = np.where(repeat[:, None] > 0, alpha + sig(beta * (r - mu)), 1.0)
    prior = COUNTS / N
    zp = z + kappa * -np.log(1 / prior - 1) / lam
    pos = np.log1p(np.exp(-zp)) * (1 - sig(zp)) ** gamma
    neg = np.log1p(np.exp(lam * zp)) / lam * sig(lam * zp) ** gamma
    return (r_hat * (y * pos + (1 - y) * neg)).mean(), r_hat


def test_distribution_balanced_is_the_papers_rebalancing_and_negative_tolerant_regularisation():
    want, r_hat = db_numpy(Z, Y)
    # image 0 has one positive: r = 1 for it; image 1 has classes 0 and 1: r_00 = (1/60) / (1/60 + 1/25)
    assert np.isclose(r_hat[0, 0], 0.1 + sig(10 * 0.8))
    assert np.isclose(r_hat[1, 0], 0.1 + sig(10 * ((1 / 60) / (1 / 60 + 1 / 25) - 0.2)))
    assert np.isclose(loss_of("distribution-balanced"), want, atol=1e-6)
    assert np.isclose(loss_of("distribution-balanced", gamma=2.0), db_numpy(Z, Y, gamma=2.0)[0], atol=1e-6)


def test_distribution_balanced_gives_an_image_without_positives_weight_1():
    y = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    want, r_hat = db_numpy(Z, y)
    assert (r_hat[0] == 1).all()
    assert np.isclose(loss_of("distribution-balanced", target=y), want, atol=1e-6)


def test_distribution_balanced_takes_the_class_weights_on_the_positive_term():
    # with every r^ equal the weights scale the positive terms like BCE's pos_weight
    plain = make_loss("distribution-balanced", COUNTS, num_images=N)
    weighted = make_loss("distribution-balanced", COUNTS, weights=[2.0, 2.0, 2.0], num_images=N)
    y = t(np.zeros((2, 3)))
    assert torch.allclose(plain(t(Z), y), weighted(t(Z), y))
    assert weighted(t(Z), t(Y)) > plain(t(Z), t(Y))


def test_logit_adjusted_bce_is_bce_of_logits_shifted_by_the_prior_log_odds():
    prior = COUNTS / N
    z = Z + np.log(prior / (1 - prior))
    want = -(Y * np.log(sig(z)) + (1 - Y) * np.log(1 - sig(z))).mean()
    assert np.isclose(loss_of("logit-adjusted-bce"), want, atol=1e-6)
    assert np.isclose(loss_of("logit-adjusted-bce", tau=0.0), loss_of("bce"), atol=1e-7)


@pytest.mark.parametrize("name", ["logit-adjusted-bce", "distribution-balanced"])
def test_a_loss_with_class_priors_needs_the_number_of_training_images_not_the_sum_of_the_positives(name):
    # 90 positives among N = 100 images: the sum of the counts would give priors 60/90, 25/90, 5/90
    with pytest.raises(ValueError, match="class priors need num_images"):
        make_loss(name, COUNTS)
    by_sum = make_loss(name, COUNTS, num_images=COUNTS.sum())(t(Z), t(Y))
    assert not torch.isclose(by_sum, make_loss(name, COUNTS, num_images=N)(t(Z), t(Y)))


@pytest.mark.parametrize("name", ["logit-adjusted-bce", "distribution-balanced"])
@pytest.mark.parametrize("counts", [[60, 0, 5], [60, 100, 5]])
def test_a_class_without_positives_or_negatives_has_no_prior(name, counts):
    with pytest.raises(ValueError, match="0 < positives < 100"):
        make_loss(name, counts, num_images=N)


@pytest.mark.parametrize("name", LINEAR_IN_TARGETS)
def test_the_mixing_triple_equals_the_loss_of_the_mixed_multi_hot_targets(name):
    loss = make_loss(name, COUNTS, weights=W, num_images=N)
    other = TARGET.flip(0)
    mixed = loss(LOGITS, (TARGET, other, 0.3))
    assert torch.allclose(mixed, 0.3 * loss(LOGITS, TARGET) + 0.7 * loss(LOGITS, other), atol=1e-6)
    assert torch.allclose(mixed, loss(LOGITS, 0.3 * TARGET + 0.7 * other), atol=1e-6)


def test_distribution_balanced_mixes_the_two_losses():
    loss = make_loss("distribution-balanced", COUNTS, num_images=N)
    other = TARGET.flip(0)
    want = 0.3 * loss(LOGITS, TARGET) + 0.7 * loss(LOGITS, other)
    assert torch.allclose(loss(LOGITS, (TARGET, other, 0.3)), want)


def test_drw_replaces_the_positive_weights():
    loss = make_loss("bce", COUNTS)
    plain = F.binary_cross_entropy_with_logits(LOGITS, TARGET)
    assert torch.allclose(loss(LOGITS, TARGET), plain)
    loss.set_weights(W)
    assert torch.allclose(loss(LOGITS, TARGET), F.binary_cross_entropy_with_logits(LOGITS, TARGET, pos_weight=t(W)))
    loss.set_weights(np.ones(3))
    assert torch.allclose(loss(LOGITS, TARGET), plain)


@pytest.mark.parametrize("name", MULTI)
def test_every_multi_label_loss_is_a_differentiable_scalar(name):
    loss = make_loss(name, COUNTS, num_images=N)
    logits = LOGITS.clone().requires_grad_()
    value = loss(logits, TARGET)
    value.backward()
    assert value.shape == () and torch.isfinite(value) and value > 0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MULTI)
def test_every_multi_label_loss_runs_under_bf16_autocast_in_float32(name):
    loss = make_loss(name, COUNTS, weights=W, num_images=N)
    logits = (LOGITS * 10).to(torch.bfloat16).requires_grad_()  # saturated probabilities too
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(logits, TARGET)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(logits.grad.float()).all()


@pytest.mark.parametrize("name", MULTI)
def test_multi_label_losses_refuse_class_index_targets(name):
    with pytest.raises(ValueError, match=r"multi-hot float targets shaped like the logits \(16, 3\)"):
        make_loss(name, COUNTS, num_images=N)(LOGITS, torch.zeros(16, dtype=torch.long))


def test_every_loss_has_a_task_and_the_multi_label_ones_are_named():
    assert all(loss.task in TASKS for loss in LOSSES.values())
    assert MULTI == ["bce", "focal-bce", "asl", "distribution-balanced", "logit-adjusted-bce"]
    assert get_loss("ce").task == "single-label"
    with pytest.raises(ValueError, match="unknown loss 'dice'; one of ce, focal"):
        get_loss("dice")


@pytest.mark.gpu
@pytest.mark.parametrize("name", MULTI)
def test_every_multi_label_loss_runs_on_cuda_under_fp16_autocast(name):
    loss = make_loss(name, COUNTS, weights=W, num_images=N)
    with torch.autocast("cuda", dtype=torch.float16):
        value = loss.cuda()(LOGITS.cuda().half(), TARGET.cuda())
    assert torch.isfinite(value) and torch.allclose(value.cpu(), loss.cpu()(LOGITS, TARGET), atol=1e-2)


@pytest.mark.parametrize("name", MULTI)
def test_an_ignored_entry_changes_no_multi_label_loss(name):
    """A target of -1 (an uncertain label a CSV spec ignores) adds nothing, whatever its logit or label."""
    target = TARGET.clone()
    target[3, 1] = target[7, 0] = -1
    loss = make_loss(name, COUNTS, num_images=N)
    base = loss(LOGITS, target)
    for value in (-20.0, 0.0, 20.0):
        moved = LOGITS.clone()
        moved[3, 1] = moved[7, 0] = value
        assert torch.equal(loss(moved, target), base)
    assert not torch.equal(loss(LOGITS, TARGET), base)  # the entries did count before they were ignored


def test_bce_with_ignored_entries_is_pytorchs_bce_summed_over_the_counted_ones():
    target = TARGET.clone()
    target[0, 0] = target[5, 2] = -1
    counted = target >= 0
    each = F.binary_cross_entropy_with_logits(LOGITS, target.clamp(min=0), reduction="none")
    want = (each * counted).sum() / each.numel()
    assert torch.allclose(make_loss("bce", COUNTS, num_images=N)(LOGITS, target), want, atol=1e-6)


@pytest.mark.parametrize("name", MULTI)
def test_no_ignored_entry_leaves_every_loss_bit_identical_to_the_plain_mean(name):
    loss = make_loss(name, COUNTS, num_images=N)
    y = TARGET
    pos, neg = loss.terms(LOGITS, y)
    assert torch.equal(loss(LOGITS, y), (loss.weights * y * pos + (1 - y) * neg).mean())
