import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train.methods.losses import LOSSES, make_loss

COUNTS = np.array([500, 120, 30, 6])
torch.manual_seed(0)
LOGITS = torch.randn(16, 4) * 3
TARGET = torch.randint(0, 4, (16,))
SINGLE = [name for name, loss in LOSSES.items() if loss.task == "single-label"]


@pytest.mark.parametrize("name", SINGLE)
def test_every_loss_is_finite_differentiable_and_takes_the_mixing_triple(name):
    loss = make_loss(name, COUNTS)
    logits = LOGITS.clone().requires_grad_()
    value = loss(logits, TARGET)
    value.backward()
    assert torch.isfinite(value) and logits.grad.abs().sum() > 0
    other = TARGET.flip(0)
    mixed = loss(LOGITS, (TARGET, other, 0.3))
    assert torch.allclose(mixed, 0.3 * loss(LOGITS, TARGET) + 0.7 * loss(LOGITS, other))
    assert torch.allclose(loss(LOGITS, (TARGET, TARGET, 1.0)), loss(LOGITS, TARGET))


@pytest.mark.parametrize("name", SINGLE)
def test_one_hot_soft_targets_equal_hard_targets(name):
    loss = make_loss(name, COUNTS)
    assert torch.allclose(loss(LOGITS, F.one_hot(TARGET, 4).float()), loss(LOGITS, TARGET), atol=1e-6)


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_loss_runs_under_autocast_in_float32(name, dtype):
    loss = make_loss(name, COUNTS)
    with torch.autocast("cpu", dtype=dtype):
        value = loss(LOGITS.to(dtype), TARGET)
    assert value.dtype == torch.float32 and torch.isfinite(value)


def test_ce_weighted_is_pytorchs_weighted_mean():
    w = np.array([0.5, 1.0, 2.0, 4.0])
    got = make_loss("ce", COUNTS, weights=w)(LOGITS, TARGET)
    per = F.cross_entropy(LOGITS, TARGET, reduction="none")
    wt = torch.tensor(w, dtype=torch.float32)[TARGET]
    assert torch.allclose(got, (wt * per).sum() / wt.sum())


def test_focal_with_gamma_0_equals_ce():
    assert torch.allclose(make_loss("focal", COUNTS, gamma=0.0)(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET))


def test_focal_down_weights_easy_examples_by_the_known_factor():
    p = F.softmax(LOGITS, 1)[torch.arange(16), TARGET]
    want = ((1 - p) ** 2 * -torch.log(p)).mean()
    assert torch.allclose(make_loss("focal", COUNTS)(LOGITS, TARGET), want, atol=1e-6)


def test_focal_alpha_weights_scale_each_sample_by_its_class_weight_in_a_plain_mean():
    w = np.array([0.5, 1.0, 2.0, 4.0])
    got = make_loss("focal", COUNTS, weights=w, gamma=0.0)(LOGITS, TARGET)
    per = F.cross_entropy(LOGITS, TARGET, reduction="none")
    assert torch.allclose(got, (torch.tensor(w, dtype=torch.float32)[TARGET] * per).mean())


def test_ldam_with_no_margin_is_scaled_ce():
    got = make_loss("ldam", COUNTS, max_m=0.0, s=30.0)(LOGITS, TARGET)
    assert torch.allclose(got, F.cross_entropy(30.0 * LOGITS, TARGET))


def test_ldam_margins_follow_n_to_the_minus_quarter_with_the_largest_max_m():
    loss = make_loss("ldam", COUNTS, max_m=0.5)
    m = loss.margins.numpy()
    assert np.isclose(m.max(), 0.5) and np.argmax(m) == 3
    assert np.allclose(m / m[0], (COUNTS[0] / COUNTS) ** 0.25)
    # the margin is subtracted from the true class logit only, before scaling
    want = F.cross_entropy(30 * (LOGITS - F.one_hot(TARGET, 4) * loss.margins), TARGET)
    assert torch.allclose(loss(LOGITS, TARGET), want)


def test_ldam_on_cosine_logits_from_a_normed_head():
    from train.methods.heads import NormedLinear

    head = NormedLinear(8, 4)
    cos = head(torch.randn(16, 8))
    assert cos.abs().max() <= 1 + 1e-6
    assert torch.isfinite(make_loss("ldam", COUNTS, s=30)(cos, TARGET))


def test_balanced_softmax_adds_log_counts_and_equals_logit_adjusted_with_tau_1():
    want = F.cross_entropy(LOGITS + torch.log(torch.tensor(COUNTS, dtype=torch.float32)), TARGET)
    assert torch.allclose(make_loss("balanced-softmax", COUNTS)(LOGITS, TARGET), want, atol=1e-6)
    assert torch.allclose(make_loss("logit-adjusted", COUNTS, tau=1.0)(LOGITS, TARGET), want, atol=1e-6)
    assert torch.allclose(make_loss("logit-adjusted", COUNTS, tau=0.0)(LOGITS, TARGET),
                          F.cross_entropy(LOGITS, TARGET))


def test_weights_can_be_replaced_for_drw():
    loss = make_loss("ce", COUNTS)
    before = loss(LOGITS, TARGET)
    loss.set_weights([1.0, 1.0, 1.0, 10.0])
    assert not torch.allclose(before, loss(LOGITS, TARGET))


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match="ce, focal, ldam, logit-adjusted, balanced-softmax"):
        make_loss("dice", COUNTS)


@pytest.mark.gpu
@pytest.mark.parametrize("name", SINGLE)
def test_every_loss_runs_on_cuda_under_fp16_autocast(name):
    loss = make_loss(name, COUNTS).cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        value = loss(LOGITS.cuda().half(), TARGET.cuda())
    assert torch.isfinite(value) and torch.allclose(value.cpu(), make_loss(name, COUNTS)(LOGITS, TARGET), atol=1e-2)
