"""``python -m train predict | export``: the subcommands that use a finished run (flags and running)."""
import argparse
import os
from pathlib import Path
from types import SimpleNamespace

from eval.runs import refuse_run_file
from shards.flags import int_at_least

from ..device import amp_context, resolve_device
from ..loop.inference import TTA
from .evaluate import evaluate
from .export import FORMATS, export
from .load import load_model
from .predict import predict

COMMANDS = ("predict", "export", "evaluate")


def add_parsers(sub) -> None:
    """The two subparsers, added to ``python -m train``'s."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser("predict", formatter_class=fmt,
                       help="class probabilities for new images (PNG, JPEG, DICOM) with a run's preprocessing")
    p.add_argument("run", help="a finished run dir")
    p.add_argument("--images", required=True, help="a folder (searched recursively), an image, or a CSV with a "
                   "'path' column (relative to the CSV's folder)")
    p.add_argument("--out", default="predictions.csv", help="CSV: path, one probability per class, one logit per "
                   "class (logit:CLASS), then predicted and probability (single-label) or findings (multi-label)")
    p.add_argument("--threshold", default=None, help="multi-label runs: a finding is listed when its probability "
                   "reaches this; tuned (the default): each class's threshold tuned on val by the run (its F1@tuned)")
    p.add_argument("--any-modality", action="store_true", help="DICOM files of any modality; without it only "
                   "radiographs (CR, DX, DR) are scored and a CT, MR, ... file is refused")
    p.add_argument("--skip-bad", action="store_true", help="leave unreadable files out (listed) instead of stopping")
    p.add_argument("--batch-size", type=int_at_least(1), default=64, help="images per batch")
    p.add_argument("--workers", type=int_at_least(0), default=min(4, os.cpu_count() or 1),
                   help="DataLoader worker processes")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="auto: the run's precision on CUDA, fp32 on the CPU")
    p.add_argument("--shards", default=None, help="the run's shards dir, if not where its config.json says (its "
                   "manifest.json tells how the training images were packed)")
    p.add_argument("--tta", default="none", choices=tuple(TTA), help="test-time augmentation: logits averaged over "
                   "the image and its flip (hflip), and a 1.1x zoom of both (hflip-scale)")
    v = sub.add_parser("evaluate", formatter_class=fmt, help="score a finished run's val and test again with "
                       "test-time augmentation, into RUN/tta-NAME/ (the run's own files stay)")
    v.add_argument("run", help="a finished run dir")
    v.add_argument("--tta", required=True, choices=tuple(TTA), default=argparse.SUPPRESS, help="as for predict")
    v.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    v.add_argument("--batch-size", type=int_at_least(1), default=64, help="images per batch")
    v.add_argument("--shards", default=None, help="the run's shards dir, if not where its config.json says")
    e = sub.add_parser("export", formatter_class=fmt, help="the run's model as a torch.export .pt2, TorchScript, "
                       "ONNX or safetensors, with its metadata, preprocess.py and a model card beside it")
    e.add_argument("run", help="a finished run dir")
    e.add_argument("--format", default="export", choices=tuple(FORMATS),
                   help="export: torch.export's .pt2 (recommended; torch.export.load); torchscript: deprecated "
                   "upstream, kept while torch supports it; onnx: for ONNX Runtime and others (needs "
                   "cxr-lt[onnx]); safetensors: the weights only, with the metadata to rebuild the model")
    e.add_argument("--out", default=None, help="default: RUN/export/" + " | ".join(FORMATS.values()))
    e.add_argument("--shards", default=None, help="as for predict")


def run(a, say=print) -> int:
    """Run ``a.cmd``; a user's mistake raises ``shards.errors.UsageError``."""
    if a.cmd == "evaluate":
        out = evaluate(Path(a.run), a.tta, resolve_device(a.device), a.shards, a.batch_size)
        say(f"{out}: predictions and summary.json with tta {a.tta}; python -m eval report {out} reads them")
        return 0
    out = Path(a.out or Path(a.run) / "export" / FORMATS[a.format]) if a.cmd == "export" else Path(a.out)
    refuse_run_file(out, [a.run])
    if a.cmd == "export":
        meta = export(load_model(a.run, "cpu", a.shards), a.format, out, Path(a.run))
        say(f"{out}: {a.format} model; metadata in {meta}; preprocess.py and the model card README.md beside it")
        return 0
    device = resolve_device(a.device)
    tm = load_model(a.run, device, a.shards)
    precision = a.precision
    if precision == "auto":
        precision = (tm.provenance.get("precision") or "fp32") if device.type == "cuda" else "fp32"
    _, amp = amp_context(SimpleNamespace(precision=precision), device)
    if a.threshold is not None and tm.task != "multi-label":
        say(f"note: --threshold is for multi-label runs; {a.run} is a {tm.task} run: its CSV gives the most "
            f"probable class")
    result = predict(tm, Path(a.images), out, a.batch_size, a.workers, a.skip_bad, amp,
                     a.threshold or "tuned", a.any_modality, a.tta)
    n = result["images"]  # each skipped file was logged as it was met
    say(f"{result['out']}: probabilities for {n} image{'s' if n != 1 else ''}"
        + (f" ({len(result['skipped'])} unreadable, skipped)" if result["skipped"] else "")
        + (f"; {result['findings']}" if result["findings"] else ""))
    return 0
