"""The run configuration: one typed dataclass whose defaults are the paper's protocol.

Every field is a command-line flag (``--image-size``, ``--no-channels-last``);
unknown or mistyped flags are errors. The resolved config is written to the run
dir and into every checkpoint, and a resume refuses a changed one.
"""
import argparse
import dataclasses
from dataclasses import dataclass, field, fields


def choice(default, *choices, help=""):
    return field(default=default, metadata={"choices": choices, "help": help})


def opt(default, help=""):
    return field(default=default, metadata={"help": help})


@dataclass
class FitConfig:
    shards: str = opt("", "shards dir (python -m ingest build-shards)")
    method: str = opt("ce", "a name from `python -m train methods`")
    out: str = opt("", "run dir")
    model: str = choice("resnet50", "resnet18", "resnet34", "resnet50", "densenet121", "tiny")
    pretrained: str = opt("imagenet", "imagenet | none | PATH to a state dict")
    image_size: int = opt(256, "pixels, square (the paper: 256, no crop)")
    channels: int = choice(3, 3, 1, help="model input: 3 = the grey image in each of R, G, B (the paper); "
                           "1 = grey only, conv1's ImageNet weights summed over RGB")
    epochs: int = opt(60, "at most this many epochs")
    patience: int = opt(15, "stop after this many epochs without a better val balanced accuracy")
    batch_size: int = 256
    lr: float = 1e-4
    precision: str = choice("auto", "auto", "fp16", "bf16", "fp32", help="auto: fp16 on CUDA, fp32 on CPU")
    channels_last: bool = True
    compile: bool = False
    loader: str = choice("auto", "auto", "dali", "torch", help="auto: DALI when installed")
    workers: int = opt(4, "loader worker processes (threads for DALI)")
    seed: int = 0
    deterministic: bool = opt(False, "deterministic kernels (exact resume on CPU)")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    init_from: str = opt("", "stage-1 run dir (crt, tau-norm)")
    resume: str = choice("auto", "auto", "never")
    checkpoint_minutes: float = opt(10.0, "also checkpoint mid-epoch this often")
    hflip: bool = opt(True, "random horizontal flip")
    rotation: float = opt(15.0, "random rotation up to this many degrees")
    rrc_scale: float = opt(1.0, "random-resized-crop minimum area (1: no crop)")
    mixup_alpha: float = 0.2
    drw_epoch: int = opt(10, "DRW: weights and lr scale from this epoch (0-based)")
    drw_lr_factor: float = 0.1
    crt_features: bool = opt(False, "cRT on backbone features computed once (no augmentation): seconds, not hours")
    sync_bn: bool = opt(False, "with torchrun: SyncBatchNorm (default: each rank's BatchNorm on its own batch)")
    paper_bn_bug: bool = opt(False, "reproduce the paper's code: BatchNorm in eval mode from epoch 2 on")
    paper_ldam: bool = opt(False, "reproduce the paper's code: LDAM on a plain linear head")
    tensorboard: bool = opt(True, "write TensorBoard events when tensorboard is installed")

    # fields that may differ on resume without changing the result
    RESUMABLE_CHANGES = ("resume", "workers", "checkpoint_minutes", "tensorboard", "compile")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_flags(parser: argparse.ArgumentParser, exclude=()) -> None:
    for f in fields(FitConfig):
        if f.name in exclude:
            continue
        flag = "--" + f.name.replace("_", "-")
        kw = {"help": f.metadata.get("help", ""), "default": argparse.SUPPRESS}
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            parser.add_argument(flag, type=typ, choices=f.metadata.get("choices"), **kw)


def from_args(args: argparse.Namespace, base: FitConfig | None = None) -> FitConfig:
    given = {f.name: getattr(args, f.name) for f in fields(FitConfig) if hasattr(args, f.name)}
    return dataclasses.replace(base or FitConfig(), **given)


def config_changes(saved: dict, current: dict) -> list[str]:
    """What differs; a field the saved config lacks came later and ran as its default."""
    saved = {**FitConfig().to_dict(), **saved}
    return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in current.items()
            if k not in FitConfig.RESUMABLE_CHANGES and saved.get(k) != v]
