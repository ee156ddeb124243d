"""predict / load_model on the original images of a run's test split reproduce the run's own predictions."""
import importlib.util
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import shards_and_start, tiny_fit
from eval.predictions import read_predictions
from shards.errors import UsageError
from train import load_model
from train.__main__ import main
from train.loop.fit import fit
from train.methods.registry import get_method
from train.use.predict import find_images, predict, predict_logits

# On the CPU both loaders decode the shards' JPEG with libjpeg-turbo as PIL does: the logits agree to float32
# rounding. (On a GPU, DALI's nvJPEG decode may differ from it by a grey level, a few 1e-2 in logits.)
LOGIT_TOL = 1e-4


def originals(raw_dir, keys) -> list:
    where = {p.stem: p for p in raw_dir.rglob("*.png")}
    return [where[k] for k in keys]


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def assert_reproduces_test_predictions(run, raw_dir):
    saved = read_predictions(run / "predictions" / "test.parquet")
    logits, kept, bad = predict_logits(load_model(run), originals(raw_dir, saved.keys), workers=0)
    assert bad == [] and kept == list(range(len(saved.keys)))
    assert (logits.argmax(1) == saved.logits.argmax(1)).mean() >= 0.995
    np.testing.assert_allclose(logits, saved.logits, atol=LOGIT_TOL)


@pytest.fixture(scope="module")
def dali_run(shards_dir, tmp_path_factory):
    if importlib.util.find_spec("nvidia.dali") is None:
        pytest.skip("NVIDIA DALI is not installed (pip install 'cxr-lt[dali]')")
    out = tmp_path_factory.mktemp("dali") / "ce"
    assert fit(tiny_fit(shards_dir, out, epochs=1, loader="dali")) == "finished"
    return out


@pytest.mark.slow
def test_predict_cli_on_the_original_test_images_reproduces_a_torch_runs_test_predictions(stage1_run, raw_dir,
                                                                                          tmp_path):
    saved = read_predictions(stage1_run / "predictions" / "test.parquet")
    listing = tmp_path / "test.csv"
    pd.DataFrame({"path": [str(p) for p in originals(raw_dir, saved.keys)]}).to_csv(listing, index=False)
    out = tmp_path / "out" / "predictions.csv"
    assert main(["predict", str(stage1_run), "--images", str(listing), "--out", str(out), "--workers", "2"]) == 0
    table = pd.read_csv(out)
    names = load_model(stage1_run).class_names
    assert list(table.columns) == ["path", *names, *[f"logit:{n}" for n in names], "predicted", "probability"]
    np.testing.assert_allclose(table[names].to_numpy(), softmax(saved.logits), atol=1e-5)
    np.testing.assert_allclose(table[[f"logit:{n}" for n in names]].to_numpy(), saved.logits, atol=LOGIT_TOL)
    assert (table["predicted"] == [names[k] for k in saved.logits.argmax(1)]).mean() >= 0.995
    np.testing.assert_allclose(table["probability"], softmax(saved.logits).max(1), atol=1e-5)
    assert_reproduces_test_predictions(stage1_run, raw_dir)


@pytest.mark.slow
def test_predict_reproduces_a_dali_runs_test_predictions(dali_run, raw_dir):
    assert_reproduces_test_predictions(dali_run, raw_dir)


@pytest.mark.slow
@pytest.mark.parametrize("method,kw", [("crt", {}), ("crt", {"crt_features": True}), ("tau-norm", {}),
                                       ("ldam", {}), ("crt-bce", {"crt_features": True})],
                         ids=["crt", "crt-features", "tau-norm", "ldam", "crt-bce-features"])
def test_load_model_gives_every_stage_the_model_its_run_evaluated(method, kw, request, raw_dir, tmp_path):
    shards_dir, extra = shards_and_start(request, get_method(method))
    run = tmp_path / method
    assert fit(tiny_fit(shards_dir, run, method=method, epochs=1, **extra, **kw)) == "finished"
    tm = load_model(run)
    assert tm.method == method and tm.model.training is False
    if method == "tau-norm":
        tau = torch.load(run / "best.pt", weights_only=True)["tau"]
        assert tm.tau == tau == tm.metadata()["tau"] and tm.model.head.bias is None
    if method.startswith("crt"):  # best.pt holds the frozen stage-1 backbone and the new classifier
        stage1 = torch.load(f"{extra['init_from']}/best.pt", weights_only=True)["model"]
        ours = torch.load(run / "best.pt", weights_only=True)["model"]
        assert all(torch.equal(ours[k], v) for k, v in stage1.items() if k.startswith("backbone."))
    assert_reproduces_test_predictions(run, raw_dir)


@pytest.mark.slow
def test_ldam_saved_logits_carry_the_scale_and_its_loss_applies_s_once(shards_dir, tmp_path):
    run = tmp_path / "ldam"
    assert fit(tiny_fit(shards_dir, run, method="ldam", epochs=1)) == "finished"
    logits = read_predictions(run / "predictions" / "test.parquet").logits
    assert 1.0 < np.abs(logits).max() <= 30.0 + 1e-4  # 30 * cosine, not a bare cosine
    # s applied twice would make the first epoch's loss hundreds (900 * cosine differences)
    assert pd.read_csv(run / "metrics.csv")["train_loss"].iloc[0] < 60


def test_preprocess_takes_a_path_a_pil_image_or_an_array_alike(stage1_run, raw_dir):
    tm = load_model(stage1_run)
    path = next(raw_dir.rglob("*.png"))
    want = tm.preprocess(path)
    p = tm.preprocess
    assert want.shape == (p.channels, p.image_size, p.image_size) and want.dtype == torch.float32
    assert torch.equal(tm.preprocess(str(path)), want)
    assert torch.equal(tm.preprocess(Image.open(path)), want)
    assert torch.equal(tm.preprocess(np.asarray(Image.open(path))), want)


def test_png_variants_of_one_image_give_the_same_input(stage1_run, raw_dir, tmp_path):
    """16-bit grey (x 257), RGB and RGBA copies of an 8-bit grey PNG are the same image to the model."""
    tm = load_model(stage1_run)
    path = next(raw_dir.rglob("*.png"))
    grey = np.asarray(Image.open(path))
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 128)], -1)).save(tmp_path / "rgba.png")
    want = tm.preprocess(path)
    for name in ("g16.png", "rgb.png", "rgba.png"):
        assert torch.equal(tm.preprocess(tmp_path / name), want), name
    Image.fromarray(grey).save(tmp_path / "x.jpg", quality=100)
    assert (tm.preprocess(tmp_path / "x.jpg") - want).abs().max() < 0.2  # JPEG's own loss, nothing else


def test_an_unreadable_file_is_named_with_its_reason_and_nothing_is_written(stage1_run, raw_dir, tmp_path, capsys,
                                                                           caplog):
    images = tmp_path / "images"
    images.mkdir()
    good = next(raw_dir.rglob("*.png"))
    (images / "a.png").write_bytes(good.read_bytes())
    (images / "b.png").write_bytes(good.read_bytes()[:200])  # truncated
    out = tmp_path / "p.csv"
    with pytest.raises(UsageError, match=r"b\.png: cannot decode.*--skip-bad"):
        predict(load_model(stage1_run), images, out, workers=0)
    assert not out.exists() and list(tmp_path.glob(".p.csv*")) == []
    capsys.readouterr()
    assert main(["predict", str(stage1_run), "--images", str(images), "--out", str(out), "--skip-bad",
                 "--workers", "0"]) == 0
    assert pd.read_csv(out)["path"].tolist() == [str(images / "a.png")]
    said = capsys.readouterr()
    assert (said.out + said.err + caplog.text).count("b.png") == 1  # named once, with its reason
    assert f"{out}: probabilities for 1 image (1 unreadable, skipped)" in said.out
    assert main(["predict", str(stage1_run), "--images", str(images), "--out", str(out), "--workers", "0"]) == 2


def test_images_are_found_in_a_folder_recursively_in_a_file_or_in_a_csv(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.png", "a/b/2.JPG", "a/b/3.dcm", "a/notes.txt", "a/README"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "b" / "IM0001").write_bytes(bytes(128) + b"DICM" + bytes(8))  # a DICOM without a suffix
    assert [p.name for p in find_images(tmp_path / "a")] == ["1.png", "2.JPG", "3.dcm", "IM0001"]
    assert find_images(tmp_path / "a" / "1.png") == [tmp_path / "a" / "1.png"]
    pd.DataFrame({"path": ["a/1.png", str(tmp_path / "a/b/2.JPG")]}).to_csv(tmp_path / "l.csv", index=False)
    assert find_images(tmp_path / "l.csv") == [tmp_path / "a/1.png", tmp_path / "a/b/2.JPG"]
    pd.DataFrame({"file": ["a/1.png"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UsageError, match="no 'path' column"):
        find_images(tmp_path / "bad.csv")
    with pytest.raises(UsageError, match="no such file or folder"):
        find_images(tmp_path / "missing")


def test_a_run_records_how_its_shards_were_packed_so_it_loads_without_them(stage1_run, shards_dir, tmp_path):
    import json
    import shutil

    run = tmp_path / "moved"
    shutil.copytree(stage1_run, run)
    meta = json.loads((run / "config.json").read_text())
    assert meta["shards_image"] == json.loads((shards_dir / "manifest.json").read_text())["image"]
    meta["config"]["shards"] = str(tmp_path / "shards-gone")
    (run / "config.json").write_text(json.dumps(meta))
    prep = load_model(run).preprocess
    assert (prep.shard_size, prep.shard_format, prep.shard_quality) == (32, "jpeg", 95)


def test_predict_on_a_multi_label_run_gives_a_sigmoid_per_class_and_the_findings_at_its_thresholds(
        ml_stage1_run, raw_dir, tmp_path, capsys):
    saved = read_predictions(ml_stage1_run / "predictions" / "test.parquet")
    tm = load_model(ml_stage1_run)
    summary = json.loads((ml_stage1_run / "summary.json").read_text())
    tuned = [summary["per_class"][c]["threshold"] for c in tm.class_names]
    assert tm.task == "multi-label" and "a sigmoid per class" in tm.metadata()["input"]
    assert tm.thresholds == tuned == tm.metadata()["thresholds"] and tm.metadata()["synthetic"] is True
    paths = originals(raw_dir, saved.keys[:8])
    listing = tmp_path / "images.csv"
    pd.DataFrame({"path": [str(p) for p in paths]}).to_csv(listing, index=False)
    logits, _, _ = predict_logits(tm, paths, workers=0)
    np.testing.assert_allclose(logits, saved.logits[:8], atol=LOGIT_TOL)
    probs = 1 / (1 + np.exp(-logits))
    for flag, cut in (([], np.asarray(tuned)), (["--threshold", "0.5"], np.full(len(tuned), 0.5))):
        out = tmp_path / f"predictions{len(flag)}.csv"
        assert main(["predict", str(ml_stage1_run), "--images", str(listing), "--out", str(out), "--workers", "0",
                     *flag]) == 0
        said = capsys.readouterr().out
        assert ("each class's threshold tuned on val" if not flag else "probability 0.5 or more, every class") in said
        table = pd.read_csv(out, keep_default_na=False).set_index("path").loc[[str(p) for p in paths]]
        assert list(table.columns) == [*tm.class_names, *[f"logit:{n}" for n in tm.class_names], "findings"]
        np.testing.assert_allclose(table[tm.class_names].to_numpy(), probs, atol=1e-5)
        np.testing.assert_allclose(table[[f"logit:{n}" for n in tm.class_names]].to_numpy(), logits, atol=1e-5)
        want = ["; ".join(n for n, p, t in zip(tm.class_names, row, cut) if p >= t) for row in probs]
        assert table["findings"].tolist() == want
    capsys.readouterr()
    assert main(["predict", str(ml_stage1_run), "--images", str(listing), "--threshold", "2"]) == 2
    assert "--threshold 2: give tuned or a probability strictly between 0 and 1" in capsys.readouterr().err


def test_threshold_on_a_single_label_run_says_it_does_not_apply(stage1_run, raw_dir, tmp_path, capsys):
    image = next(raw_dir.rglob("*.png"))
    assert main(["predict", str(stage1_run), "--images", str(image), "--out", str(tmp_path / "p.csv"),
                 "--workers", "0", "--threshold", "0.3"]) == 0
    assert "note: --threshold is for multi-label runs" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "p.csv").columns)[-2:] == ["predicted", "probability"]


@pytest.mark.parametrize("name", ["best.pt", "config.json", "predictions/test.parquet"])
def test_predict_refuses_an_out_that_is_one_of_the_runs_own_files(stage1_run, raw_dir, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    before = (run / name).read_bytes()
    assert main(["predict", str(run), "--images", str(next(raw_dir.rglob("*.png"))), "--out", str(run / name),
                 "--workers", "0"]) == 2
    assert "destroy the run" in capsys.readouterr().err
    assert (run / name).read_bytes() == before


def test_predict_into_an_existing_folder_or_through_a_link_is_one_line(stage1_run, raw_dir, tmp_path, capsys):
    image = str(next(raw_dir.rglob("*.png")))
    (tmp_path / "outdir").mkdir()
    assert main(["predict", str(stage1_run), "--images", image, "--out", str(tmp_path / "outdir"),
                 "--workers", "0"]) == 2
    assert "is a folder" in capsys.readouterr().err
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "p.csv").symlink_to(victim)
    assert main(["predict", str(stage1_run), "--images", image, "--out", str(tmp_path / "p.csv"),
                 "--workers", "0"]) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "precious"


@pytest.mark.parametrize("bad", [float("nan"), 5, -1, "0.5", None])
def test_malformed_tuned_thresholds_are_one_line_naming_summary_json(ml_stage1_run, raw_dir, tmp_path, capsys, bad):
    run = tmp_path / "run"
    shutil.copytree(ml_stage1_run, run)
    summary = json.loads((run / "summary.json").read_text())
    first = next(iter(summary["per_class"]))
    summary["per_class"][first]["threshold"] = bad
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["predict", str(run), "--images", str(next(raw_dir.rglob("*.png"))), "--out",
                 str(tmp_path / "p.csv"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "summary.json: class" in err and "not a probability" in err and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


def test_rough_edges_a_fifo_a_header_only_csv_an_eps_and_odd_arrays_are_one_line(stage1_run, tmp_path, capsys):
    import os

    from shards.images import BadImage, load_grey

    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(BadImage, match="not a plain file"):
        load_grey(tmp_path / "x.png")  # would block forever on open
    (tmp_path / "list.csv").write_text("path\n")
    assert main(["predict", str(stage1_run), "--images", str(tmp_path / "list.csv"), "--out",
                 str(tmp_path / "p.csv")]) == 2
    assert "no rows under its header" in capsys.readouterr().err
    (tmp_path / "e.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(BadImage, match="cannot decode"):
        load_grey(tmp_path / "e.png")
    for bad in (np.zeros((0, 0), np.uint8), np.zeros(10, np.uint8), np.zeros((4, 4, 7), np.uint8)):
        with pytest.raises(BadImage, match="is not an image"):
            load_grey(bad)


def test_the_pixel_limit_message_names_only_flags_that_exist_and_the_true_size(tmp_path):
    from shards.images import BadImage, load_grey

    Image.new("L", (3000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(BadImage) as e:
        load_grey(tmp_path / "big.png", max_pixels=1_000_000)
    assert "3000 x 2000 = 6.0 megapixels" in str(e.value) and "build-shards: raise it with --max-pixels" in str(e.value)
