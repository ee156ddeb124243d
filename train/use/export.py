"""python -m train export RUN --format torchscript|onnx|safetensors: the run's model for use elsewhere.

Each file gets a metadata JSON beside it (``FILE.json``): class names, groups,
image size, channels, normalisation mean / std, method, tau, architecture, the
run's git commit and shards index hash. The exported model takes the
normalised float input (``train.use.preprocess.Preprocess``) and returns logits.
"""
import json
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from shards.atomic import commit, tmp_path, write_atomic
from shards.errors import UsageError

from .load import TrainedModel
from ..models import build_model

FORMATS = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx", "safetensors": "model.safetensors"}


def _example(tm: TrainedModel) -> torch.Tensor:
    p = tm.preprocess
    return torch.zeros(1, p.channels, p.image_size, p.image_size)


def _torchscript(tm: TrainedModel, tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # trace is deprecated upstream, still the portable format
        torch.jit.save(torch.jit.trace(tm.model, _example(tm)), str(tmp))


def _onnx(tm: TrainedModel, tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter needs no onnxscript
        torch.onnx.export(tm.model, (_example(tm),), str(tmp), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


def _safetensors(tm: TrainedModel, tmp: Path) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise UsageError("--format safetensors needs the safetensors package: "
                         "pip install 'cxr-lt[safetensors]'") from None
    state = {k: v.contiguous() for k, v in tm.model.state_dict().items()}
    save_file(state, str(tmp), metadata={"cxr_lt": json.dumps(tm.metadata())})


def export(tm: TrainedModel, fmt: str, out: Path) -> Path:
    """Write the model as ``fmt`` to ``out`` and its metadata to ``out.json``; returns the metadata's path."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = tm.model.cpu().float().to(memory_format=torch.contiguous_format)
    tm = replace(tm, model=model)
    tmp = tmp_path(out)
    try:
        {"torchscript": _torchscript, "onnx": _onnx, "safetensors": _safetensors}[fmt](tm, tmp)
        commit(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    meta = out.with_name(out.name + ".json")
    write_atomic(meta, json.dumps({**tm.metadata(), "format": fmt, "file": out.name}, indent=1).encode())
    return meta


def model_from_safetensors(path: Path) -> tuple[torch.nn.Module, dict]:
    """(the model in eval mode, its metadata) from an exported .safetensors file: no pickle involved."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["cxr_lt"])
    arch = meta["architecture"]
    model = build_model(arch["model"], len(meta["class_names"]), "none", arch["head"], arch["channels"],
                        head_scale=arch.get("head_scale"))
    model.load_state_dict(load_file(str(path)))
    return model.eval(), meta
