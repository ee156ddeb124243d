"""Registry-driven: every method trains, resumes exactly, and changes what it should."""
import math

import numpy as np
import pytest
import torch

from shards.errors import UsageError
from shards.reader import open_shards
from train.loop.fit import fit
from train.loop.stages import STAGES, method_head
from train.methods.losses import get_loss
from train.methods.registry import METHODS, PAPER_METHODS, get_method
from train.models import build_model
from train.rundir.checkpoint import load_checkpoint

from conftest import shards_and_start, tiny_fit

TRAINED = [m for m in METHODS.values() if STAGES[m.stage].run is None]


def test_the_papers_fifteen_methods_are_named_and_registered_first():
    assert list(METHODS)[:15] == list(PAPER_METHODS) == [
        "ce", "cb-ce", "rw-ce", "focal", "cb-focal", "rw-focal", "ldam", "cb-ldam", "cb-ldam-drw", "rw-ldam",
        "rw-ldam-drw", "mixup", "balanced-mixup", "crt", "tau-norm"]


def test_a_method_of_the_other_task_is_refused_naming_the_methods_that_fit(shards_dir, ml_shards_dir, tmp_path):
    with pytest.raises(UsageError, match=r"--method ce is a single-label method .* multi-label data; use one of: "
                                         r"bce, rw-bce, cb-bce"):
        fit(tiny_fit(ml_shards_dir, tmp_path / "a", "ce"))
    with pytest.raises(UsageError, match=r"--method asl is a multi-label method .* one of: ce, cb-ce"):
        fit(tiny_fit(shards_dir, tmp_path / "b", "asl"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unknown_method_lists_the_names():
    with pytest.raises(UsageError, match="ce, cb-ce, rw-ce"):
        get_method("softmax")


@pytest.mark.parametrize("method", TRAINED, ids=lambda m: m.name)
def test_two_steps_give_a_finite_loss_and_move_the_trainable_weights(method, request, tmp_path):
    shards_dir, kw = shards_and_start(request, method)
    cfg = tiny_fit(shards_dir, tmp_path / "run", method.name, **kw)
    assert fit(cfg, stop=lambda epoch, step: step >= 2) == "interrupted"
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["state"]["step"] == 2 and math.isfinite(ckpt["state"]["accum"]["loss_sum"])
    after = ckpt["model"]
    if method.stage == "crt":
        stage1 = load_checkpoint(f"{kw['init_from']}/best.pt")["model"]
        frozen = [k for k in after if k.startswith("backbone.")]
        assert frozen and all(torch.equal(after[k], stage1[k]) for k in frozen), "cRT changed the frozen backbone"
        assert not torch.equal(after["head.weight"], stage1["head.weight"])
    else:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, open_shards(shards_dir).num_classes, cfg.pretrained,
                            method_head(method, vars(cfg)), cfg.channels)
        before = model.state_dict()
        moved = [k for k in after if after[k].is_floating_point() and not torch.equal(after[k], before[k])]
        assert any(k.startswith("backbone.") for k in moved) and any(k.startswith("head.") for k in moved)


@pytest.mark.parametrize("method", TRAINED, ids=lambda m: m.name)
def test_interrupted_and_resumed_equals_uninterrupted_exactly(method, request, tmp_path):
    shards_dir, kw = shards_and_start(request, method)
    assert fit(tiny_fit(shards_dir, tmp_path / "whole", method.name, **kw)) == "finished"
    cut = tiny_fit(shards_dir, tmp_path / "cut", method.name, **kw)
    assert fit(cut, stop=lambda epoch, step: epoch == 1 and step == 3) == "interrupted"
    assert fit(cut) == "finished"
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in rows]
    assert strip(a["state"]["history"]) == strip(b["state"]["history"])
    written = sorted(p.name for p in (tmp_path / "whole" / "predictions").iterdir())
    assert written == (["test.parquet", "val.parquet"] if method.task == "multi-label" else
                       ["balanced-test.parquet", "test.parquet", "val.parquet"])
    for name in written:
        assert (tmp_path / "whole" / "predictions" / name).read_bytes() == \
            (tmp_path / "cut" / "predictions" / name).read_bytes()


def test_tau_norm_trains_nothing_and_reports_the_tau_it_chose(shards_dir, stage1_run, tmp_path):
    import json

    assert fit(tiny_fit(shards_dir, tmp_path / "tau", "tau-norm", init_from=str(stage1_run))) == "finished"
    summary = json.loads((tmp_path / "tau" / "summary.json").read_text())
    assert 0.0 <= summary["tau"] <= 2.0 and summary["tau_sweep"][str(summary["tau"])] == summary["val"]["bacc"]
    assert not (tmp_path / "tau" / "last.pt").exists()


@pytest.mark.parametrize("name", ["ce", "balanced-mixup", "ca-bce"])
def test_the_dali_loader_trains_and_resumes_exactly_too(name, request, tmp_path):
    shards_dir, kw = shards_and_start(request, get_method(name))
    kw["loader"] = "dali"
    assert fit(tiny_fit(shards_dir, tmp_path / "whole", name, **kw)) == "finished"
    cut = tiny_fit(shards_dir, tmp_path / "cut", name, **kw)
    assert fit(cut, stop=lambda epoch, step: epoch == 0 and step == 4) == "interrupted"
    assert fit(cut) == "finished"
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.parametrize("method", METHODS.values(), ids=lambda m: m.name)
def test_every_method_uses_a_loss_of_its_own_task_and_a_registered_stage(method):
    assert get_loss(method.loss).task == method.task
    assert method.stage in STAGES


@pytest.mark.parametrize("name, refused", [("rw-bce", True), ("distribution-balanced", True), ("bce", False),
                                           ("ca-bce", False)])
def test_a_class_without_training_positives_refuses_only_the_methods_that_weigh_by_counts(name, refused,
                                                                                          ml_shards_dir, tmp_path,
                                                                                          monkeypatch):
    from shards.reader import ShardSet

    real = ShardSet.train_counts
    monkeypatch.setattr(ShardSet, "train_counts", lambda self: real(self) * (np.arange(self.num_classes) != 7))
    cfg = tiny_fit(ml_shards_dir, tmp_path / "run", name)
    if refused:
        with pytest.raises(UsageError, match=f"no training positives of Hernia, and --method {name} weighs classes "
                                             r"by their training counts; use a method .* \(such as bce\)"):
            fit(cfg)
        assert not (tmp_path / "run").exists()
    else:
        assert fit(cfg, stop=lambda epoch, step: step >= 1) == "interrupted"
