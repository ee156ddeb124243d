"""An export's preprocess.py, run where the project cannot be imported, gives train predict's input and logits."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from shards.augment import AugmentSpec
from shards.torch_loader import apply_augment
from train import load_model
from train.use.export import export
from train.use.portable import resize_bilinear, script
from train.use.predict import predict_logits
from train.use.preprocess import Preprocess

# Runs preprocess.py with every import of the project refused, then (given a model) ONNX Runtime on the batch.
CLIENT = """
import sys
import numpy as np
PROJECT = {"cxr_lt", "ingest", "shards", "train", "eval"}
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT:
            raise ImportError(f"the project was imported: {name}")
sys.meta_path.insert(0, Refuse())
sys.path = [p for p in sys.path if p not in ("", ROOT)]
sys.path.insert(0, HERE)
from preprocess import preprocess
x = np.stack([preprocess(p) for p in PATHS])
np.save(OUT + "/x.npy", x)
if MODEL:
    import onnxruntime
    np.save(OUT + "/logits.npy", onnxruntime.InferenceSession(MODEL).run(None, {"image": x})[0])
"""


def run_client(folder, paths, out, model=None):
    code = "\n".join([f"ROOT, HERE, OUT = {str(ROOT)!r}, {str(folder)!r}, {str(out)!r}",
                      f"PATHS, MODEL = {[str(p) for p in paths]!r}, {str(model) if model else None!r}", CLIENT])
    done = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return np.load(out / "x.npy"), (np.load(out / "logits.npy") if model else None)


def images(raw_dir, folder):
    """8-bit PNG, 16-bit PNG, RGB PNG, a non-square RGB JPEG and a non-square grey PNG, from the fixture's images."""
    folder.mkdir()
    a = np.asarray(Image.open(sorted(raw_dir.rglob("*.png"))[0]).convert("L"))
    wide = np.asarray(Image.fromarray(a).resize((90, 51)))
    made = {"grey8.png": Image.fromarray(a), "grey16.png": Image.fromarray(a.astype(np.uint16) * 257),
            "rgb.png": Image.fromarray(np.stack([a, a[::-1], a.T], -1)), "wide.jpg": Image.fromarray(
                np.stack([wide, wide // 2, 255 - wide], -1)), "wide.png": Image.fromarray(wide)}
    for name, img in made.items():
        img.save(folder / name)
    assert Image.open(folder / "grey16.png").mode.startswith("I")
    return [folder / name for name in made]


@pytest.mark.parametrize("n_in,n_out", [(32, 24), (32, 48), (64, 224), (256, 224), (100, 37), (33, 224), (512, 97)])
def test_resize_bilinear_is_torchvisions_antialiased_uint8_resize_to_the_bit(n_in, n_out):
    img = np.random.default_rng(n_in * n_out).integers(0, 256, (n_in, n_in), dtype=np.uint8)
    want = apply_augment(torch.from_numpy(img)[None], AugmentSpec(n_out), None)[0].numpy()
    np.testing.assert_array_equal(resize_bilinear(img, n_out), want)


@pytest.mark.slow
def test_exported_preprocess_py_and_onnx_runtime_give_train_predicts_logits(stage1_run, raw_dir, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cxr-lt[onnx]')")
    tm = load_model(stage1_run)
    export(tm, "onnx", tmp_path / "export" / "model.onnx", stage1_run)
    paths = images(raw_dir, tmp_path / "images")
    (tmp_path / "client").mkdir()
    x, logits = run_client(tmp_path / "export", paths, tmp_path / "client", tmp_path / "export" / "model.onnx")
    want, kept, _ = predict_logits(tm, paths, workers=0)
    assert kept == list(range(len(paths)))
    assert x.dtype == np.float32 and x.shape == (len(paths), 3, 32, 32)
    np.testing.assert_allclose(x, torch.stack([tm.preprocess(p) for p in paths]).numpy(), atol=1e-5)
    np.testing.assert_allclose(logits, want, atol=1e-5)


@pytest.mark.parametrize("fmt,quality,size,channels,window16", [("jpeg", 95, 48, 3, "sbit"), ("jpeg", 80, 24, 1, "sbit"),
                                                                 ("png", 95, 40, 3, "sbit"),
                                                                 ("jpeg", 95, 32, 1, "percentile")])
def test_preprocess_py_of_any_recipe_gives_the_projects_input(fmt, quality, size, channels, window16, raw_dir,
                                                              tmp_path):
    prep = Preprocess(32, fmt, quality, size, channels, window16)
    (tmp_path / "script").mkdir()
    (tmp_path / "script" / "preprocess.py").write_text(script(prep.recipe(), "test"))
    paths = images(raw_dir, tmp_path / "images")
    (tmp_path / "client").mkdir()
    x, _ = run_client(tmp_path / "script", paths, tmp_path / "client")
    np.testing.assert_allclose(x, torch.stack([prep(p) for p in paths]).numpy(), atol=1e-5)
    assert x.shape == (len(paths), channels, size, size)


def test_the_recipe_names_every_step(stage1_run):
    recipe = load_model(stage1_run).preprocess.recipe()
    assert (recipe["shard_size"], recipe["shard_format"], recipe["shard_quality"]) == (32, "jpeg", 95)
    steps = " ".join(recipe["steps"])
    assert "area resize to 32 x 32" in steps and "JPEG encode at quality 95" in steps
    assert json.loads(json.dumps(recipe)) == recipe
