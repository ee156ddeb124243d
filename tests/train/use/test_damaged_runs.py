"""A run dir from someone else, damaged or altered: predict and export say what is wrong in one line."""
import io
import json
import shutil
import zipfile

import pytest
import torch

from train.__main__ import main
from train.rundir import checkpoint


def set_config(key, value):
    def change(run):
        meta = json.loads((run / "config.json").read_text())
        meta["config"][key] = value
        (run / "config.json").write_text(json.dumps(meta))
    return change


def drop_config(key):
    def change(run):
        meta = json.loads((run / "config.json").read_text())
        del meta["config"][key]
        (run / "config.json").write_text(json.dumps(meta))
    return change


def set_meta(key, value):
    def change(run):
        meta = json.loads((run / "config.json").read_text())
        meta[key] = value
        (run / "config.json").write_text(json.dumps(meta))
    return change


def best_pt(transform):
    def change(run):
        state = torch.load(run / "best.pt", weights_only=True)
        buf = io.BytesIO()
        torch.save(transform(state), buf)
        (run / "best.pt").write_bytes(buf.getvalue())
    return change


def truncated(n):
    def change(run):
        (run / "best.pt").write_bytes((run / "best.pt").read_bytes()[:n])
    return change


def deflated(run):
    """best.pt with its members deflated: a small file that expands (torch.save never writes this)."""
    data = io.BytesIO()
    with zipfile.ZipFile(run / "best.pt") as src, zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    (run / "best.pt").write_bytes(data.getvalue())


DAMAGE = {
    "image_size 0": (set_config("image_size", 0), "image-size 0: must be >= 1"),
    "image_size '64'": (set_config("image_size", "64"), "not an int"),
    "image_size NaN": (set_config("image_size", float("nan")), "not an int"),
    "image_size 60000": (set_config("image_size", 60000), "must be <= 4096"),
    "unknown model": (set_config("model", "resnet9000"), "nor a timm model"),
    "no image_size": (drop_config("image_size"), "has no image_size"),
    "no method": (drop_config("method"), "has no method"),
    "class names not a list": (set_meta("class_names", "Atelectasis"), "class_names"),
    "input not a mapping": (set_meta("input", True), "'input' is not the model's input spec"),
    "input std 0": (set_meta("input", {"scaling": "imagenet", "mean": [0.5] * 3, "std": [0, 1, 1]}), "input spec"),
    "input of 1 channel for 3": (set_meta("input", {"scaling": "imagenet", "mean": [0.5], "std": [0.2]}),
                                 "input spec"),
    "shards_image size 0": (set_meta("shards_image", {"size": 0, "format": "jpeg"}), "image settings"),
    "model a list": (best_pt(lambda s: {**s, "model": list(s["model"].values())}), "not a state dict"),
    "no model key": (best_pt(lambda s: {"config": s["config"]}), "no model"),
    "missing weights": (best_pt(lambda s: {**s, "model": dict(list(s["model"].items())[1:])}), "does not fit"),
    "truncated to 1 KiB": (truncated(1024), "not a readable checkpoint"),
    "truncated to 40 KiB": (truncated(40 * 1024), "not a readable checkpoint"),
    "empty": (truncated(0), "not a readable checkpoint"),
    "deflated": (deflated, "compressed members"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
@pytest.mark.parametrize("cmd", ["predict", "export"])
def test_a_damaged_run_is_one_line_naming_the_file(stage1_run, raw_dir, tmp_path, capsys, name, cmd):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    damage, said = DAMAGE[name]
    damage(run)
    out = tmp_path / "out"
    argv = (["predict", str(run), "--images", str(next(raw_dir.rglob("*.png"))), "--workers", "0"]
            if cmd == "predict" else ["export", str(run), "--format", "torchscript"])
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert ("config.json" in err) or ("best.pt" in err)
    assert not out.exists()


def test_a_checkpoint_over_the_cap_is_refused_before_it_is_read(stage1_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(checkpoint, "MAX_TORCH_FILE_BYTES", 1000)
    monkeypatch.setattr(torch, "load", lambda *a, **kw: pytest.fail("read"))
    assert main(["export", str(stage1_run), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 2
    assert "GiB this tool loads" in capsys.readouterr().err


def test_pretrained_at_a_poisoned_pickle_is_one_line_without_torchs_advice(shards_dir, tmp_path, capsys):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "w.pt").write_bytes(pickle.dumps({"model": Boom()}))
    from conftest import tiny_flags

    flags = tiny_flags(model="resnet18", pretrained=str(tmp_path / "w.pt"), epochs=1)
    assert main(["fit", "--shards", str(shards_dir), "--out", str(tmp_path / "run"), *flags]) == 2
    out = capsys.readouterr()
    assert "w.pt: holds objects other than tensors" in out.err and "weights_only" not in out.err
    assert "pwned" not in out.out
