import numpy as np
import pytest
import torch

from train.methods.heads import COSINE_SCALE, NormedLinear, loss_options, make_head
from train.methods.losses import make_loss
from train.methods.registry import METHODS
from train.models import build_model

COUNTS = np.array([500, 120, 30, 6])


def test_cosine_head_logits_carry_the_ldam_scale_so_softmax_is_not_near_uniform():
    torch.manual_seed(0)
    head = make_head("normed", 8, 4)
    x = torch.randn(16, 8)
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(head.weight, dim=1).t()
    assert head.scale == 30.0
    assert torch.allclose(head(x), 30.0 * cos, atol=1e-5)
    assert head(x).softmax(1).max(1).values.mean() > 0.5 > cos.softmax(1).max(1).values.mean()


def test_ldam_on_a_scaled_cosine_head_is_the_same_loss_and_gradient_as_on_bare_cosines():
    torch.manual_seed(0)
    x, target = torch.randn(16, 8), torch.randint(0, 4, (16,))
    bare, scaled = NormedLinear(8, 4), NormedLinear(8, 4, scale=30.0)
    scaled.load_state_dict(bare.state_dict())
    want = make_loss("ldam", COUNTS, s=30.0)(bare(x), target)
    got = make_loss("ldam", COUNTS, s=30.0, **loss_options("ldam", scaled))(scaled(x), target)
    want.backward()
    got.backward()
    assert torch.allclose(got, want, rtol=1e-5)
    assert torch.allclose(scaled.weight.grad, bare.weight.grad, rtol=1e-4, atol=1e-7)


def test_scaled_ldam_applies_s_to_the_margins_only():
    loss = make_loss("ldam", COUNTS, s=30.0, scaled=True)
    logits, target = torch.randn(16, 4) * 10, torch.randint(0, 4, (16,))
    want = torch.nn.functional.cross_entropy(logits - 30.0 * torch.nn.functional.one_hot(target, 4) * loss.margins,
                                             target)
    assert torch.allclose(loss(logits, target), want)


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if m.head == "normed"])
def test_every_cosine_head_method_gets_the_scale_its_loss_uses_and_the_loss_knows(name):
    method = METHODS[name]
    model = build_model("tiny", 4, "none", method.head)
    assert model.head.scale == method.loss_params["s"] == COSINE_SCALE
    assert loss_options(method.loss, model.head) == {"scaled": True}


def test_plain_heads_leave_the_loss_as_it_was():
    assert loss_options("ldam", make_head("linear", 8, 4)) == {}
    assert loss_options("ce", make_head("normed", 8, 4)) == {}
    assert make_head("unbiased", 8, 4).bias is None


def test_an_unknown_head_names_the_valid_ones():
    with pytest.raises(ValueError, match="linear, normed, unbiased"):
        make_head("cosine", 8, 4)


def test_the_tau_norm_head_gives_the_tau_normalised_logits_without_the_bias():
    from train.methods.decoupling import tau_logits, tau_norm_head

    torch.manual_seed(0)
    linear, x = torch.nn.Linear(8, 4), torch.randn(5, 8)
    head = tau_norm_head(linear, 0.7)
    assert head.bias is None
    assert torch.allclose(head(x), tau_logits(x, linear.weight.detach(), 0.7), atol=1e-6)
