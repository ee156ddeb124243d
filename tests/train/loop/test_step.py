"""The training step never waits for the device: no host read of a tensor happens once per step.

A read (``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``, ``float(t)``, ``int(t)``, ``if t:``) from the
project's code drains the GPU's queue; counted here on the CPU, where the same code runs. Torch's own
reads (an unfused optimizer's host-side step counter) are not the project's and are not counted, nor are the
PyTorch reader's reads while it makes a sample (``ShardImages.__getitem__``: CPU tensors of decoded bytes, in
a worker process or, with ``--workers 0``, before the batch is moved to the device).
"""
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from shards.torch_loader import ShardImages
from train.loop.fit import fit
from train.loop.state import EpochTotals
from train.loop.step import NonFiniteWatch, StepParts, make_optimizer, train_step
from train.methods.losses import make_loss
from train.methods.mixing import MIXINGS, get_mixing

from conftest import ROOT, tiny_fit

PROJECT = tuple(str(ROOT / pkg) + "/" for pkg in ("train", "shards", "eval"))
READS = ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__")
MAKING_A_SAMPLE = ShardImages.__getitem__.__code__


def making_a_sample(frame) -> bool:
    while frame is not None and frame.f_code is not MAKING_A_SAMPLE:
        frame = frame.f_back
    return frame is not None


def count_host_reads(monkeypatch) -> Counter:
    """Counts, by read and calling line, every host read of a tensor made from train/, shards/ or eval/."""
    counts = Counter()

    def counted(name, real):
        def read(self, *args, **kw):
            frame = sys._getframe(1)
            if frame.f_code.co_filename.startswith(PROJECT) and not making_a_sample(frame):
                counts[f"{name} at {frame.f_code.co_filename}:{frame.f_lineno}"] += 1
            return real(self, *args, **kw)
        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    return counts


def reads_during_fit(monkeypatch, cfg, steps: int) -> Counter:
    with monkeypatch.context() as m:
        counts = count_host_reads(m)
        assert fit(cfg, stop=lambda epoch, step: step >= steps) == "interrupted"
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("method,loader,precision", [
    ("ce", "torch", "fp32"), ("ce", "dali", "fp32"), ("balanced-mixup", "torch", "fp32"),
    ("balanced-mixup", "dali", "fp32"), ("mixup", "torch", "fp32"), ("ce", "torch", "fp16")])
def test_no_host_read_happens_once_per_training_step(shards_dir, tmp_path, monkeypatch, method, loader,
                                                      precision):
    kw = dict(method=method, loader=loader, precision=precision, batch_size=4, epochs=1, deterministic=False)
    few = reads_during_fit(monkeypatch, tiny_fit(shards_dir, tmp_path / "few", **kw), 3)
    more = reads_during_fit(monkeypatch, tiny_fit(shards_dir, tmp_path / "more", **kw), 9)
    grew = {line: (few[line], more[line]) for line in more if more[line] != few[line]}
    assert not grew, f"host reads that grow with the number of steps (3 steps, 9 steps): {grew}"
    assert sum(more.values()) > 0  # the counter sees the reads at the checkpoint: it is counting


def test_every_mixing_says_whether_it_needs_a_second_stream():
    assert {n for n, m in MIXINGS.items() if m.second_stream} == {"balanced-mixup"}
    with pytest.raises(ValueError, match="unknown mixing 'cutmix'; one of: none, mixup, balanced-mixup"):
        get_mixing("cutmix")


def parts(net, scaler, precision="fp32"):
    dtype = {"fp16": torch.float16, "fp32": None}[precision]
    return StepParts(net, make_loss("ce", [10, 10, 10]), make_optimizer(net.parameters(), 1e-3, torch.device("cpu")),
                     scaler, lambda: torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None),
                     get_mixing("none"), 0.2, np.random.default_rng(0), lambda x: x, torch.device("cpu"))


class Reported(Exception):
    pass


def report(where, loss):
    raise Reported(where, float(loss))


def test_a_non_finite_loss_is_reported_one_step_late_with_that_batch_and_at_settle():
    good = {"x": torch.randn(8, 4), "y": torch.randint(0, 3, (8,))}
    bad = {"x": torch.full((8, 4), float("nan")), "y": good["y"]}
    p, cpu = parts(torch.nn.Linear(4, 3), torch.amp.GradScaler("cpu", enabled=False)), torch.device("cpu")
    totals, watch = EpochTotals.zero(cpu), NonFiniteWatch(cpu, report)
    train_step(p, good, totals, watch, "step 0")
    train_step(p, bad, totals, watch, "step 1")  # not read yet: the step did not wait for it
    with pytest.raises(Reported) as caught:
        train_step(p, good, totals, watch, "step 2")
    assert caught.value.args[0] == "step 1" and np.isnan(caught.value.args[1])
    p, watch = parts(torch.nn.Linear(4, 3), p.scaler), NonFiniteWatch(cpu, report)
    train_step(p, bad, totals, watch, "last step")
    with pytest.raises(Reported, match="last step"):
        watch.settle()  # what every checkpoint and epoch end does first


def test_fp16_steps_skipped_by_the_grad_scaler_are_counted_on_the_device():
    net = torch.nn.Linear(4, 3)
    before = net.weight.detach().clone()
    p = parts(net, torch.amp.GradScaler("cpu", init_scale=2.0 ** 127), "fp16")  # scaled gradients overflow
    totals, watch = EpochTotals.zero(torch.device("cpu")), NonFiniteWatch(torch.device("cpu"), None)
    train_step(p, {"x": torch.randn(8, 4), "y": torch.randint(0, 3, (8,))}, totals, watch)
    assert totals.skipped.device.type == "cpu" and int(totals.skipped) == 1 and torch.equal(net.weight, before)
    p.scaler = torch.amp.GradScaler("cpu")
    train_step(p, {"x": torch.randn(8, 4), "y": torch.randint(0, 3, (8,))}, totals, watch)
    assert int(totals.skipped) == 1 and not torch.equal(net.weight, before)


def test_the_optimizer_is_fused_on_cuda_only():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert not make_optimizer(params, 1e-3, torch.device("cpu")).defaults["fused"]


@pytest.mark.gpu
def test_a_cuda_training_step_never_synchronises_with_the_host():
    """CUDA's own sync detector: any host wait inside the steps raises."""
    device = torch.device("cuda")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5)).to(device)
    net(torch.randn(2, 3, 16, 16, device=device))
    p = StepParts(net, make_loss("ce", [10] * 5).to(device), make_optimizer(net.parameters(), 1e-3, device),
                  torch.amp.GradScaler("cuda"), lambda: torch.autocast("cuda", dtype=torch.float16),
                  get_mixing("mixup"), 0.2, np.random.default_rng(0), lambda x: x.to(device, non_blocking=True),
                  device)
    totals, watch = EpochTotals.zero(device), NonFiniteWatch(device, lambda where, loss: None)
    batches = [{"x": torch.randn(16, 3, 16, 16).pin_memory(), "y": torch.randint(0, 5, (16,)).pin_memory()}
               for _ in range(6)]
    train_step(p, batches[0], totals, watch)  # first step: lazy initialisations may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for b in batches[1:]:
            train_step(p, b, totals, watch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert totals.n == 96 and totals.host()["logits"].shape == (96, 5)
    assert make_optimizer(net.parameters(), 1e-3, device).defaults["fused"]
