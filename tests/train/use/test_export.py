"""Exported models give the PyTorch model's outputs, and carry the metadata a user needs."""
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from shards.errors import UsageError
from train import load_model
from train.__main__ import main
from train.use.export import EXTRA_FILE, FORMATS, export, model_from_safetensors

TOL = 1e-5


def batch(tm, raw_dir) -> torch.Tensor:
    return torch.stack([tm.preprocess(p) for p in sorted(raw_dir.rglob("*.png"))[:6]])


def run_pt2(path, x):
    return torch.export.load(str(path)).module()(x).detach().numpy()


def run_torchscript(path, x):
    return torch.jit.load(str(path))(x).detach().numpy()


def run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cxr-lt[onnx]')")
    return ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]


def run_safetensors(path, x):
    model, _ = model_from_safetensors(path)
    return model(x).detach().numpy()


@pytest.mark.parametrize("fmt,run", [("export", run_pt2), ("torchscript", run_torchscript), ("onnx", run_onnx),
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta_path = export(tm, fmt, out, stage1_run)
    assert [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))] == []
    np.testing.assert_allclose(run(out, x), want, atol=TOL)
    np.testing.assert_allclose(run(out, x[:1]), want[:1], atol=TOL)  # any batch size
    meta = json.loads(meta_path.read_text())
    config = json.loads((stage1_run / "config.json").read_text())
    assert meta["class_names"] == tm.class_names and meta["groups"] == config["groups"]
    assert (meta["image_size"], meta["channels"], meta["method"], meta["tau"]) == (32, 3, "ce", None)
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert (meta["git_commit"], meta["index_sha256"]) == (config["git_commit"], config["index_sha256"])


def test_export_cli_writes_the_default_file_and_its_metadata(stage1_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    assert main(["export", str(run)]) == 0  # the recommended format: torch.export's .pt2
    assert (run / "export" / "model.pt2").is_file()
    assert json.loads((run / "export" / "model.pt2.json").read_text())["format"] == "export"
    assert {p.name for p in (run / "export").iterdir()} == {"model.pt2", "model.pt2.json", "README.md",
                                                              "preprocess.py"}


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


def embedded_metadata(fmt, path) -> dict:
    """What the model file itself says, read the way an outside client would."""
    if fmt == "onnx":
        import onnx

        return {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    if fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            return f.metadata()
    files = {EXTRA_FILE: ""}
    if fmt == "torchscript":
        torch.jit.load(str(path), _extra_files=files)
    else:
        torch.export.load(str(path), extra_files=files)
    return {"cxr_lt": files[EXTRA_FILE]}


@pytest.mark.parametrize("fmt", ["export", "torchscript", "onnx", "safetensors"])
def test_the_model_file_describes_itself_and_its_dir_has_a_card_and_preprocess_py(fmt, stage1_run, tmp_path):
    pytest.importorskip("onnx" if fmt == "onnx" else "safetensors" if fmt == "safetensors" else "torch")
    tm = load_model(stage1_run)
    out = tmp_path / "export" / FORMATS[fmt]
    export(tm, fmt, out, stage1_run)
    props = embedded_metadata(fmt, out)
    meta = json.loads(props["cxr_lt"])
    assert meta["class_names"] == tm.class_names and meta["task"] == "single-label"
    assert (meta["image_size"], meta["channels"], meta["format"]) == (32, 3, fmt)
    assert meta["preprocessing"] == tm.preprocess.recipe()
    if fmt in ("onnx", "safetensors"):  # flat keys too, each a string
        assert json.loads(props["class_names"]) == tm.class_names and props["task"] == "single-label"
        assert json.loads(props["preprocessing"])["steps"] == tm.preprocess.recipe()["steps"]
        assert json.loads(props["thresholds"]) is None and json.loads(props["mean"]) == pytest.approx([0.485, 0.456,
                                                                                                       0.406])
    card = (out.parent / "README.md").read_text()
    for words in ("## Data", "**Synthetic pixels**", "## Preprocessing", "JPEG encode at quality 95",
                  "## Metrics", "balanced test set, avg:", "## Intended use", "## Limitations", "`preprocess.py`"):
        assert words in card, words
    assert "def preprocess(" in (out.parent / "preprocess.py").read_text()
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.parent.iterdir()}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_the_card_gives_the_reports_intervals_when_the_run_has_a_report(stage1_run, tmp_path):
    from eval.report import report

    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    report(run, 20, 0, False)
    export(load_model(run), "safetensors", run / "export" / "model.safetensors", run)
    card = (run / "export" / "README.md").read_text()
    assert "(95% CI " in card and "bootstrap over 20 resamples of images" in card


def test_onnx_without_onnxscript_is_a_usage_error_naming_the_extra(stage1_run, tmp_path, monkeypatch):
    import importlib.util

    from shards.errors import UsageError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else
                        find_spec(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'cxr-lt\[onnx\]'"):
        export(load_model(stage1_run), "onnx", tmp_path / "model.onnx", stage1_run)
    assert not (tmp_path / "model.onnx").exists()


def test_the_card_leaves_out_what_a_damaged_summary_holds_instead_of_failing(stage1_run, tmp_path):
    from train.use.card import metrics_lines

    run = tmp_path / "run"
    shutil.copytree(stage1_run, run, ignore=shutil.ignore_patterns("report*"))  # the run's own summary.json
    summary = json.loads((run / "summary.json").read_text())
    good = summary["test"]["bacc"]
    summary.update({"val": 7, "balanced_test": {"bacc": "high", "auroc": {"value": 0.5, "ci95": [0.4]}}})
    (run / "summary.json").write_text(json.dumps(summary))
    lines = metrics_lines(run)
    assert f"- test set, bacc: {good:.4f}" in lines
    assert not any("validation set" in line or "balanced test set" in line for line in lines)
    (run / "summary.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="summary.json is damaged"):
        metrics_lines(run)
