"""--optimizer, --weight-decay, --schedule / --warmup-epochs, --ema-decay, --grad-clip, --head-lr-factor,
--freeze-backbone-epochs: known answers, and a run that uses them all resumes exactly."""
import math

import pandas as pd
import pytest
import torch

from train.loop.ema import Ema
from train.loop.fit import fit
from train.loop.schedule import lr_factor
from train.loop.step import make_optimizer, optimize, param_groups
from train.models import build_model
from train.rundir.checkpoint import load_checkpoint

from conftest import tiny_fit


@pytest.mark.parametrize("step,want", [
    (0, 1 / 20), (9, 10 / 20), (19, 1.0),                       # warm-up: 2 epochs of 10 steps, linear to 1
    (20, 1.0), (20 + 39, 0.5 * (1 + math.cos(math.pi * 39 / 79))), (99, 0.0)])  # cosine over the other 80 steps
def test_cosine_with_warmup_equals_its_closed_form(step, want):
    assert lr_factor("cosine", step, 10, 10, warmup_epochs=2) == pytest.approx(want, abs=1e-12)


def test_step_schedule_drops_tenfold_at_half_and_three_quarters_and_constant_is_one():
    assert [lr_factor("step", s, 10, 8) for s in (39, 40, 59, 60)] == pytest.approx([1, 0.1, 0.1, 0.01])
    assert lr_factor("constant", 1234, 10, 8) == 1.0 and lr_factor("constant", 4, 10, 8, 1) == 0.5


def test_ema_after_k_steps_equals_the_hand_computed_average():
    net = torch.nn.Linear(3, 2)
    ema, decay = Ema(net, 0.9), 0.9
    want = net.weight.detach().clone()
    for k in range(5):
        with torch.no_grad():
            net.weight.add_(k + 1.0)
        ema.update()
        want = decay * want + (1 - decay) * net.weight.detach()
    torch.testing.assert_close(ema.module.weight, want)


def test_adamw_decoupled_decay_matches_torch_adamw_on_a_toy_problem():
    torch.manual_seed(0)
    ours, ref = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    ref.load_state_dict(ours.state_dict())
    groups = param_groups(ours, 0.1, 1.0)
    opt = make_optimizer(groups, 1e-2, torch.device("cpu"), "adamw", 0.1)
    # torch's AdamW with the decay on the weight matrix only (the bias is 1-d)
    want = torch.optim.AdamW([{"params": [ref.weight], "weight_decay": 0.1},
                              {"params": [ref.bias], "weight_decay": 0.0}], lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    for _ in range(10):
        optimize(((ours(x) - y) ** 2).mean(), opt, scaler)
        want.zero_grad()
        ((ref(x) - y) ** 2).mean().backward()
        want.step()
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=0)
    # decoupled: a first step on zero gradients moves nothing but the decay, lr * wd of each weight
    w = ours.weight.detach().clone()
    opt = make_optimizer(param_groups(ours, 0.1, 1.0), 1e-2, torch.device("cpu"), "adamw", 0.1)
    for p in ours.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(ours.weight, w * (1 - 1e-2 * 0.1))


def test_the_head_group_gets_its_factor_and_the_paper_keeps_one_plain_list():
    model = build_model("tiny", 3)
    assert isinstance(param_groups(model, 0.0, 1.0)[0], torch.nn.Parameter)
    groups = param_groups(model, 0.0, 10.0)
    head = {id(p) for p in model.head.parameters()}
    assert all((g["lr_factor"] == 10.0) == all(id(p) in head for p in g["params"]) for g in groups)


def test_grad_clip_bounds_the_gradient_norm():
    net = torch.nn.Linear(4, 3)
    opt = make_optimizer(net.parameters(), 0.0 + 1e-9, torch.device("cpu"), "sgd")
    optimize((net(torch.randn(8, 4) * 100) ** 2).sum(), opt, torch.amp.GradScaler("cpu", enabled=False), 1.0)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in net.parameters()]))
    assert norm == pytest.approx(1.0, rel=1e-5)


MODERN = dict(optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup_epochs=0.5, ema_decay=0.9,
              grad_clip=1.0, head_lr_factor=10.0, freeze_backbone_epochs=1, epochs=3, batch_size=16,
              checkpoint_minutes=0)


def test_a_run_with_every_option_stopped_mid_epoch_resumes_to_the_same_result(shards_dir, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert fit(tiny_fit(shards_dir, whole, **MODERN)) == "finished"
    assert fit(tiny_fit(shards_dir, cut, **MODERN), stop=lambda epoch, step: (epoch, step) == (1, 3)) \
        == "interrupted"
    assert fit(tiny_fit(shards_dir, cut, **MODERN)) == "finished"
    a, b = load_checkpoint(whole / "last.pt"), load_checkpoint(cut / "last.pt")
    for part in ("model", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    drop = ["images_per_s", "seconds"]
    metrics = pd.read_csv(whole / "metrics.csv")
    pd.testing.assert_frame_equal(metrics.drop(columns=drop), pd.read_csv(cut / "metrics.csv").drop(columns=drop))


def test_best_pt_holds_the_average_that_validation_scored(shards_dir, tmp_path):
    run = tmp_path / "ema"
    fit(tiny_fit(shards_dir, run, epochs=1, ema_decay=0.9))  # one epoch: it is the best
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert all(torch.equal(last["ema"][k], best["model"][k]) for k in best["model"])
    assert not torch.equal(last["model"]["head.weight"], best["model"]["head.weight"])


@pytest.mark.slow
def test_no_host_read_happens_once_per_step_with_every_option(shards_dir, tmp_path, monkeypatch):
    from test_step import reads_during_fit

    kw = dict(MODERN, batch_size=4, epochs=1, deterministic=False, checkpoint_minutes=10.0)
    few = reads_during_fit(monkeypatch, tiny_fit(shards_dir, tmp_path / "few", **kw), 3)
    more = reads_during_fit(monkeypatch, tiny_fit(shards_dir, tmp_path / "more", **kw), 9)
    assert {line: (few[line], more[line]) for line in more if more[line] != few[line]} == {}


def test_a_frozen_backbone_does_not_move_in_its_epochs(shards_dir, tmp_path):
    run = tmp_path / "frozen"
    fit(tiny_fit(shards_dir, run, epochs=1, freeze_backbone_epochs=1))
    torch.manual_seed(0)  # the run's own initial weights
    start = build_model("tiny", 20)
    end = load_checkpoint(run / "last.pt")["model"]
    backbone = {k: v for k, v in start.state_dict().items() if k.startswith("backbone.") and "running" not in k
                and "num_batches" not in k}
    assert all(torch.equal(v, end[k]) for k, v in backbone.items())
    assert not torch.equal(start.head.weight, end["head.weight"])
