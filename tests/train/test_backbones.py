"""timm backbones and local pretrained weights: grey input, head dropping, a timm run end to end."""
import json
import logging

import numpy as np
import pytest
import torch
import torchvision

from conftest import tiny_fit
from eval.predictions import read_predictions
from shards.errors import UsageError
from shards.loader import normalise, scale_shift
from train import load_model
from train.__main__ import main
from train.config import FitConfig
from train.context import run_input
from train.loop.fit import fit
from train.loop.stages import STAGES
from train.models import build_model, input_spec
from train.rundir.checkpoint import load_checkpoint
from train.use.predict import predict_logits
from train.weights import WeightsUnavailable, leakage

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


def test_a_checkpoint_with_another_head_loads_every_backbone_tensor_bit_identical(tmp_path, caplog):
    torch.manual_seed(1)
    chexnet = torchvision.models.resnet18(num_classes=14)  # a 14-finding head, saved under DataParallel's prefix
    torch.save({"state_dict": {"module." + k: v for k, v in chexnet.state_dict().items()}}, tmp_path / "c.pth.tar")
    with caplog.at_level(logging.INFO, logger="train"):
        model = build_model("resnet18", 5, str(tmp_path / "c.pth.tar"))
    own = chexnet.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in model.backbone.state_dict().items())
    line = next(r.getMessage() for r in caplog.records if "--pretrained" in r.getMessage())
    assert "dropped 2 (module.fc.bias, module.fc.weight)" in line and "newly initialised 0" in line


def test_a_safetensors_file_and_a_hugging_face_cache_dir_load(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(2)
    ref = build_model("convnext_atto", 3, "none")
    snap = tmp_path / "models--timm--convnext_atto.d2_in1k" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    save_file({k[len("backbone."):]: v.contiguous() for k, v in ref.state_dict().items()
               if k.startswith("backbone.")}, snap / "model.safetensors")
    for path in (snap / "model.safetensors", tmp_path / "models--timm--convnext_atto.d2_in1k"):
        got = build_model("convnext_atto", 3, str(path))
        assert all(torch.equal(v, ref.backbone.state_dict()[k]) for k, v in got.backbone.state_dict().items())


def test_weights_of_another_architecture_are_refused_in_one_line_saying_how_many_matched(tmp_path):
    path = save_backbone(build_model("resnet18", 3), tmp_path / "r18.pth")
    with pytest.raises(WeightsUnavailable, match=r"only \d+ of the \d+ tensors of a convnext_atto backbone"):
        build_model("convnext_atto", 3, path)


def test_torchxrayvision_densenet_loads_grey_and_its_scaling_is_detected(tmp_path, monkeypatch):
    xrv = pytest.importorskip("torchxrayvision")
    torch.manual_seed(3)
    net = xrv.models.DenseNet(weights=None)
    # what loading its weights adds: the operating points that tell a torchxrayvision file apart
    net.op_threshs = torch.tensor(xrv.models.model_urls["densenet121-res224-chex"]["op_threshs"])
    torch.save(net.state_dict(), tmp_path / "xrv.pt")
    model = build_model("densenet121", 5, str(tmp_path / "xrv.pt"), channels=1)
    own = net.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in model.backbone.state_dict().items())
    cfg = FitConfig(model="densenet121", pretrained=str(tmp_path / "xrv.pt"), channels=1)
    spec = run_input(cfg, STAGES["train"])
    assert spec["scaling"] == "xrv" and spec["mean"] == [0.5] and spec["std"] == [1 / 2048]
    grey = np.array([0, 1, 128, 254, 255], dtype=np.uint8)
    scaled = normalise(torch.from_numpy(grey).reshape(1, 1, 1, 5),
                       *scale_shift(1, "cpu", (spec["mean"], spec["std"])), channels_last=False)
    np.testing.assert_allclose(scaled.flatten().numpy(), xrv.datasets.normalize(grey.astype(float), 255),
                               atol=1e-3)  # float32 rounding of 2048 / 255
    with torch.no_grad():  # the same features as torchxrayvision's own network on its own input
        net.eval(), model.eval()
        img = torch.rand(1, 1, 64, 64) * 2048 - 1024
        feats = torch.nn.functional.adaptive_avg_pool2d(torch.relu(net.features(img)), 1).flatten(1)
        torch.testing.assert_close(model.backbone(img), feats)


def test_torchxrayvision_resnet50_at_512_loads_grey_from_its_model_prefix(tmp_path, monkeypatch):
    xrv = pytest.importorskip("torchxrayvision")
    tv = torchvision.models.resnet50(num_classes=18)
    tv.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.save(tv.state_dict(), tmp_path / "download.pth")  # what its download holds: a plain state dict
    monkeypatch.setattr(xrv.models, "get_weights", lambda weights, cache_dir=None: str(tmp_path / "download.pth"))
    net = xrv.models.ResNet(weights="resnet50-res512-all")
    torch.save(net.state_dict(), tmp_path / "xrv-r50.pt")
    model = build_model("resnet50", 5, str(tmp_path / "xrv-r50.pt"), channels=1)
    own = net.state_dict()
    assert all(torch.equal(v, own["model." + k]) for k, v in model.backbone.state_dict().items())


def test_a_pretrained_source_naming_the_evaluated_dataset_warns_of_leakage(shards_dir, tmp_path, caplog):
    assert leakage("torchxrayvision densenet121-res224-chex", "nih-cxr-lt") is None
    assert "test-set leakage" in leakage("torchxrayvision densenet121-res224-nih", "nih-cxr-lt")
    assert "leakage" in leakage("densenet121-res224-all", "mimic-cxr-lt")
    with caplog.at_level(logging.WARNING, logger="train"):
        fit(tiny_fit(shards_dir, tmp_path / "run", epochs=1, pretrained_source="torchxrayvision nih"))
    assert any("test-set leakage" in r.getMessage() for r in caplog.records)
    assert "leakage" in json.loads((tmp_path / "run" / "summary.json").read_text())["pretrained_leakage"]
    from eval.report import report
    assert "test-set leakage" in (report(tmp_path / "run", n_boot=10) / "report.md").read_text()


def test_torchxrayvision_scaling_runs_end_to_end_train_val_predict_export(shards_dir, raw_dir, tmp_path):
    run = tmp_path / "xrv"
    fit(tiny_fit(shards_dir, run, epochs=1, channels=1, input_scaling="xrv"))
    meta = json.loads((run / "config.json").read_text())
    assert meta["input"]["scaling"] == "xrv" and meta["input"]["std"] == [1 / 2048]
    tm = load_model(run)
    assert tm.preprocess.mean_std == ((0.5,), (1 / 2048,)) and tm.metadata()["std"] == [1 / 2048]
    assert tm.preprocess(np.full((64, 64), 255, np.uint8)).max() == pytest.approx(1024, abs=0.01)
    saved = read_predictions(run / "predictions" / "test.parquet")  # evaluated through the loader's scaling
    where = {p.stem: p for p in raw_dir.rglob("*.png")}
    logits, _, _ = predict_logits(tm, [where[k] for k in saved.keys], workers=0)
    np.testing.assert_allclose(logits, saved.logits, atol=1e-3)
