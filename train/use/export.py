"""python -m train export RUN --format export|torchscript|onnx|safetensors: the run's model for use elsewhere.

The export dir gets the model file, its metadata JSON (``FILE.json``), ``preprocess.py`` (the run's
preprocessing with numpy and Pillow only: ``train.use.portable``) and ``README.md`` (the model card:
``train.use.card``). The model file carries the metadata itself too: ONNX ``metadata_props``, safetensors
metadata, and a ``cxr_lt.json`` extra file in the .pt2 and TorchScript archives. It holds the class names,
task, thresholds, image size, channels, normalisation, the preprocessing recipe (``preprocessing``), method,
architecture, the run's git commit and shards index hash. The model takes the normalised float input and
returns logits. ``export`` (``torch.export``, a .pt2) is the recommended format; TorchScript is deprecated
upstream and kept while torch supports it.
"""
import importlib.util
import json
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from shards.atomic import atomic_file, make_dir, write_atomic
from shards.errors import UsageError

from ..models import build_model
from .card import model_card
from .load import TrainedModel
from .portable import script

FORMATS = {"export": "model.pt2", "torchscript": "model.torchscript.pt", "onnx": "model.onnx",
           "safetensors": "model.safetensors"}
EXTRA_FILE = "cxr_lt.json"  # the metadata inside a .pt2 or TorchScript archive
BATCH = 2  # the example's batch: torch.export takes a batch of 1 as a constant


def _example(tm: TrainedModel) -> torch.Tensor:
    p = tm.preprocess
    return torch.zeros(BATCH, p.channels, p.image_size, p.image_size)


def metadata_strings(meta: dict) -> dict[str, str]:
    """The metadata as string pairs (ONNX metadata_props, safetensors metadata): strings as they are, the rest
    as JSON; ``cxr_lt`` holds all of it as one JSON object."""
    return {"cxr_lt": json.dumps(meta), **{k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}}


def _exported_program(tm: TrainedModel):
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(tm.model, (_example(tm),), dynamic_shapes=({0: batch},))


def _pt2(tm: TrainedModel, f, meta: dict) -> None:
    torch.export.save(_exported_program(tm), f, extra_files={EXTRA_FILE: json.dumps(meta)})


def _torchscript(tm: TrainedModel, f, meta: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated upstream; the .pt2 format is its successor
        torch.jit.save(torch.jit.trace(tm.model, _example(tm)), f, _extra_files={EXTRA_FILE: json.dumps(meta)})


def _onnx(tm: TrainedModel, f, meta: dict) -> None:
    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript")):  # torch's dynamo exporter needs both
        raise UsageError("--format onnx needs the onnx and onnxscript packages: pip install 'cxr-lt[onnx]'") from None
    program = torch.onnx.export(tm.model, (_example(tm),), input_names=["image"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), dynamo=True,
                                verbose=False)
    model = program.model_proto
    for k, v in metadata_strings(meta).items():
        model.metadata_props.add(key=k, value=v)
    f.write(model.SerializeToString())


def _safetensors(tm: TrainedModel, f, meta: dict) -> None:
    try:
        from safetensors.torch import save
    except ImportError:
        raise UsageError("--format safetensors needs the safetensors package: "
                         "pip install 'cxr-lt[safetensors]'") from None
    state = {k: v.contiguous() for k, v in tm.model.state_dict().items()}
    f.write(save(state, metadata=metadata_strings(meta)))


WRITERS = {"export": _pt2, "torchscript": _torchscript, "onnx": _onnx, "safetensors": _safetensors}


def export(tm: TrainedModel, fmt: str, out: Path, run: Path | None = None) -> Path:
    """Write the model as ``fmt`` to ``out``, its metadata to ``out.json``, and preprocess.py and README.md (the
    model card; ``run``'s metrics) beside it; returns the metadata's path."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    out = Path(out)
    make_dir(out.parent)
    model = tm.model.cpu().float().to(memory_format=torch.contiguous_format)
    tm = replace(tm, model=model)
    meta = {**tm.metadata(), "format": fmt, "file": out.name}
    with atomic_file(out) as f:
        WRITERS[fmt](tm, f, meta)
    meta_path = out.with_name(out.name + ".json")
    write_atomic(meta_path, json.dumps(meta, indent=1).encode())
    about = f"The preprocessing of the cxr-lt model {out.name} ({meta['method']}, {meta.get('dataset')})."
    write_atomic(out.parent / "preprocess.py", script(meta["preprocessing"], about).encode())
    card = model_card(meta, Path(run) if run else Path("."), [out.name, meta_path.name, "preprocess.py"])
    write_atomic(out.parent / "README.md", card.encode())
    return meta_path


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
