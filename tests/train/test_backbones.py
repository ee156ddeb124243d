"""timm backbones and local pretrained weights: grey input, head dropping, a timm run end to end."""
import json

import numpy as np
import pytest
import torch

from conftest import tiny_fit
from eval.predictions import read_predictions
from shards.errors import UsageError
from train import load_model
from train.__main__ import main
from train.config import FitConfig
from train.loop.fit import fit
from train.models import build_model, input_spec
from train.rundir.checkpoint import load_checkpoint
from train.use.predict import predict_logits
from train.weights import WeightsUnavailable

timm = pytest.importorskip("timm")


def save_backbone(model, path):
    torch.save({k[len("backbone."):]: v for k, v in model.state_dict().items() if k.startswith("backbone.")}, path)
    return str(path)


@pytest.mark.parametrize("name", ["convnext_atto", "efficientnet_b0", "timm/resnet18"])
def test_a_grey_timm_model_gives_what_the_rgb_one_gives_for_the_grey_image_in_three_channels(name, tmp_path):
    torch.manual_seed(0)
    rgb = build_model(name, 5, "none").eval()
    grey = build_model(name, 5, save_backbone(rgb, tmp_path / "rgb.pth"), channels=1).eval()
    grey.head.load_state_dict(rgb.head.state_dict())
    first = next(m for m in grey.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)


def test_timm_models_are_built_without_a_classifier_and_record_their_pretrained_input():
    model = build_model("convnext_atto", 7, "none", channels=1)
    assert model.backbone.num_classes == 0 and model.num_features == 320
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 7)
    cfg = timm.get_pretrained_cfg("convnext_atto")
    spec = input_spec("convnext_atto", 3)
    assert (spec["mean"], spec["std"]) == (list(cfg.mean), list(cfg.std))
    assert (spec["input_size"], spec["interpolation"]) == (cfg.input_size[-1], cfg.interpolation)
    assert input_spec("resnet50", 3)["scaling"] == "imagenet"


def test_our_names_still_build_torchvision_models_and_timm_slash_picks_timms():
    assert type(build_model("resnet18", 3).backbone).__module__.startswith("torchvision")
    assert type(build_model("timm/resnet18", 3).backbone).__module__.startswith("timm")


def test_an_unknown_model_is_one_line_naming_the_lister():
    with pytest.raises(UsageError, match="--model 'resnet_nope'.*python -m train models"):
        FitConfig(model="resnet_nope")
    with pytest.raises(UsageError, match="--drop-path 0.1: the torchvision resnet18"):
        build_model("resnet18", 3, drop_path=0.1)


def test_the_models_command_lists_ours_and_timms_with_a_filter(capsys):
    assert main(["models", "convnext_atto"]) == 0
    out = capsys.readouterr().out
    assert "convnext_atto.d2_in1k" in out and "resnet18" not in out
    assert main(["models", "resnet18"]) == 0
    assert "torchvision" in capsys.readouterr().out


@pytest.mark.slow
def test_a_timm_run_trains_resumes_exactly_and_predicts_what_it_evaluated(shards_dir, raw_dir, tmp_path):
    kw = dict(model="convnext_atto", image_size=32, batch_size=16, epochs=2, checkpoint_minutes=0,
              channels=1, channels_last=False)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert fit(tiny_fit(shards_dir, whole, **kw)) == "finished"
    assert fit(tiny_fit(shards_dir, cut, **kw), stop=lambda epoch, step: (epoch, step) == (1, 2)) == "interrupted"
    assert fit(tiny_fit(shards_dir, cut, **kw)) == "finished"
    a, b = load_checkpoint(whole / "last.pt")["model"], load_checkpoint(cut / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((whole / "config.json").read_text())
    assert meta["input"]["scaling"] == "timm" and meta["input"]["interpolation"] == "bicubic"
    tm = load_model(whole)
    assert tm.preprocess.mean_std == (tuple(meta["input"]["mean"]), tuple(meta["input"]["std"]))
    saved = read_predictions(whole / "predictions" / "test.parquet")
    where = {p.stem: p for p in raw_dir.rglob("*.png")}
    logits, kept, bad = predict_logits(tm, [where[k] for k in saved.keys], workers=0)
    assert bad == [] and kept == list(range(len(saved.keys)))
    np.testing.assert_allclose(logits, saved.logits, atol=1e-4)


def test_a_missing_weights_file_is_one_line():
    with pytest.raises(WeightsUnavailable, match="no such file"):
        build_model("convnext_atto", 3, "/nonexistent/w.safetensors")
