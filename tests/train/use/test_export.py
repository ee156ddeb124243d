"""Exported models give the PyTorch model's outputs, and carry the metadata a user needs."""
import json
import shutil

import numpy as np
import pytest
import torch

from train import load_model
from train.__main__ import main
from train.use.export import export, model_from_safetensors

TOL = 1e-5


def batch(tm, raw_dir) -> torch.Tensor:
    return torch.stack([tm.preprocess(p) for p in sorted(raw_dir.rglob("*.png"))[:6]])


def run_torchscript(path, x):
    return torch.jit.load(str(path))(x).detach().numpy()


def run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cxr-lt[onnx]')")
    return ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]


def run_safetensors(path, x):
    model, _ = model_from_safetensors(path)
    return model(x).detach().numpy()


@pytest.mark.parametrize("fmt,run", [("torchscript", run_torchscript), ("onnx", run_onnx),
                                     ("safetensors", run_safetensors)])
def test_each_exported_model_gives_the_pytorch_models_logits(fmt, run, stage1_run, raw_dir, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="onnx is not installed (pip install 'cxr-lt[onnx]')")
    if fmt == "safetensors":
        pytest.importorskip("safetensors", reason="safetensors is not installed (pip install 'cxr-lt[safetensors]')")
    tm = load_model(stage1_run)
    x = batch(tm, raw_dir)
    with torch.no_grad():
        want = tm.model(x).numpy()
    out = tmp_path / f"model.{fmt}"
    meta_path = export(tm, fmt, out)
    np.testing.assert_allclose(run(out, x), want, atol=TOL)
    meta = json.loads(meta_path.read_text())
    config = json.loads((stage1_run / "config.json").read_text())
    assert meta["class_names"] == tm.class_names and meta["groups"] == config["groups"]
    assert (meta["image_size"], meta["channels"], meta["method"], meta["tau"]) == (32, 3, "ce", None)
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert (meta["git_commit"], meta["index_sha256"]) == (config["git_commit"], config["index_sha256"])


def test_export_cli_writes_the_default_file_and_its_metadata(stage1_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    assert (run / "export" / "model.torchscript.pt").is_file()
    assert json.loads((run / "export" / "model.torchscript.pt.json").read_text())["format"] == "torchscript"


def test_export_of_a_dir_that_is_not_a_run_is_a_usage_error(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_export_never_writes_through_a_planted_temp_link_nor_into_a_folder(stage1_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (run / "export").mkdir()
    for pid in (1, 2, 3, 4242):
        (run / "export" / f".model.onnx.tmp{pid}").symlink_to(victim)
    (run / "export" / "model.safetensors").symlink_to(victim)
    assert main(["export", str(run), "--format", "safetensors"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "torchscript", "--out", str(run / "best.pt")]) == 2
    assert "destroy the run" in capsys.readouterr().err
    assert victim.read_text() == "precious"
