import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from eval.predictions import read_predictions
from train import load_model
from train.__main__ import main
from conftest import tiny_fit
from train.loop.fit import fit
from train.config import TTA_CHOICES, FitConfig
from train.loop.inference import SCALE, TTA, tta_forward
from train.use.evaluate import evaluate
from train.use.predict import predict_logits
from shards.errors import UsageError
from shards.reader import open_shards


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_hflip_tta_is_the_mean_of_the_logits_on_x_and_on_x_flipped_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).eval()
    x = torch.rand(5, 1, 8, 8)
    flipped = x[..., torch.arange(7, -1, -1)]  # columns reversed by index, not by torch.flip
    with torch.no_grad():
        want = (net(x) + net(flipped)) / 2
        assert torch.allclose(tta_forward(net, x, "hflip"), want, atol=1e-6)
        assert torch.equal(tta_forward(net, x, "none"), net(x))  # no TTA: the very same tensor as before
        four = tta_forward(net, x, "hflip-scale")
    zoomed = torch.nn.functional.interpolate(x, scale_factor=SCALE, mode="bilinear", align_corners=False)
    top = (zoomed.shape[-1] - 8) // 2
    zoomed = zoomed[..., top:top + 8, top:top + 8]
    with torch.no_grad():
        want = (net(x) + net(flipped) + net(zoomed) + net(zoomed[..., torch.arange(7, -1, -1)])) / 4
    assert torch.allclose(four, want, atol=1e-6)
    assert TTA_CHOICES == tuple(TTA)


def test_tta_and_cached_crt_features_are_refused_together():
    with pytest.raises(UsageError, match="--tta"):
        FitConfig(tta="hflip", crt_features=True)


@pytest.fixture
def run_copy(stage1_run, tmp_path):
    return shutil.copytree(stage1_run, tmp_path / "ce", ignore=shutil.ignore_patterns("report*", "tta-*"))


def test_evaluate_without_tta_reproduces_the_runs_own_predictions_and_hflip_averages_flipped_logits(run_copy):
    stage1_run = run_copy
    before = {p.name: p.read_bytes() for p in (stage1_run / "predictions").iterdir()}
    none = evaluate(stage1_run, "none", batch_size=32)
    saved = read_predictions(stage1_run / "predictions" / "test.parquet")
    again = read_predictions(none / "predictions" / "test.parquet")
    assert again.keys.tolist() == saved.keys.tolist()
    np.testing.assert_allclose(softmax(again.logits), softmax(saved.logits), atol=1e-5)
    out = evaluate(stage1_run, "hflip", batch_size=32)
    assert out == stage1_run / "tta-hflip"
    assert {p.name: p.read_bytes() for p in (stage1_run / "predictions").iterdir()} == before  # originals intact
    tta = read_predictions(out / "predictions" / "test.parquet")
    tm = load_model(stage1_run)
    images = [img for _, img, _ in open_shards(json.loads((stage1_run / "config.json").read_text())["config"]
                                               ["shards"]).samples("test")][:8]
    from shards.augment import AugmentSpec
    from shards.torch_loader import apply_augment
    x = tm.preprocess.normalise(torch.stack([apply_augment(torch.from_numpy(i.copy())[None],
                                                           AugmentSpec(tm.preprocess.image_size), None)
                                             for i in images]))
    with torch.no_grad():
        by_hand = ((tm.model(x) + tm.model(torch.flip(x, dims=[-1]))) / 2).numpy()
    np.testing.assert_allclose(softmax(tta.logits[:8]), softmax(by_hand.astype(np.float64)), atol=1e-5)
    s = json.loads((out / "summary.json").read_text())
    assert s["tta"] == "hflip" and "bacc" in s["test"] and (out / "predictions" / "balanced-test.parquet").exists()


def test_the_evaluate_command_says_where_it_wrote_and_predict_takes_tta(run_copy, raw_dir, capsys):
    stage1_run = run_copy
    assert main(["evaluate", str(stage1_run), "--tta", "hflip", "--batch-size", "64"]) == 0
    assert "tta-hflip: predictions and summary.json with tta hflip" in capsys.readouterr().out
    paths = sorted(raw_dir.rglob("*.png"))[:4]
    tm = load_model(stage1_run)
    plain, _, _ = predict_logits(tm, paths, workers=0)
    flipped, _, _ = predict_logits(tm, paths, workers=0, tta="hflip")
    x = torch.stack([tm.preprocess(p) for p in paths])
    with torch.no_grad():
        by_hand = ((tm.model(x) + tm.model(torch.flip(x, dims=[-1]))) / 2).double().numpy()
    np.testing.assert_allclose(flipped, by_hand, atol=1e-5)
    assert not np.allclose(plain, flipped)


def test_fit_with_tta_saves_the_logits_evaluate_gives_with_that_tta(shards_dir, tmp_path):
    out = tmp_path / "ce-tta"
    assert fit(tiny_fit(shards_dir, out, epochs=1, tta="hflip")) == "finished"
    assert json.loads((out / "config.json").read_text())["config"]["tta"] == "hflip"
    saved = read_predictions(out / "predictions" / "test.parquet")
    again = read_predictions(evaluate(out, "hflip") / "predictions" / "test.parquet")
    np.testing.assert_allclose(softmax(again.logits), softmax(saved.logits), atol=1e-5)
