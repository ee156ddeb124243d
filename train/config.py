"""The run configuration: one typed dataclass whose defaults are the paper's protocol.

Every field is a command-line flag (``--image-size``, ``--no-channels-last``) and
a key of a ``--config`` file (a run's config.json, or a JSON / YAML mapping of
the fields). Each field's type, choices and range live in its metadata and are
checked when a FitConfig is made, so flags, files and Python callers get the
same one-line ``UsageError``. The resolved config is written to the run dir and
into every checkpoint, and a resume refuses a changed one.
"""
import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from shards.errors import UsageError

from .methods.registry import METHODS
from .models import MODELS, check_model_name

TTA_CHOICES = ("none", "hflip", "hflip-scale")  # train.loop.inference.TTA's names (a test keeps them equal)


def opt(default, help, choices=None, at_least=None, above=None, at_most=None, below=None, required=None):
    rules = {"choices": choices, "at_least": at_least, "above": above, "at_most": at_most, "below": below,
             "required": required}
    meta = {"help": help, **{k: v for k, v in rules.items() if v is not None}}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class FitConfig:
    shards: str = opt("", "shards dir (python -m ingest build-shards)", required=True)
    method: str = opt("ce", "a name from `python -m train methods`", choices=tuple(METHODS))
    out: str = opt("", "run dir", required=True)
    model: str = opt("resnet50", "network: resnet18, resnet34, resnet50, densenet121 (torchvision's), tiny, or any "
                     "timm model name (timm/NAME for timm's of these names); `python -m train models` lists them")
    pretrained: str = opt("imagenet", "imagenet (torchvision's or timm's hub weights) | none | PATH to a state dict "
                          "(.safetensors, .pth, .bin) or a Hugging Face cache dir; a differing head is dropped")
    pretrained_source: str = opt("", "what the --pretrained weights were trained on (e.g. 'torchxrayvision chex'); "
                                 "a run whose evaluated dataset it names warns of test-set leakage")
    input_scaling: str = opt("auto", "auto: the backbone's mean / std (ImageNet's; a timm model's pretrained config), "
                             "or torchxrayvision's [-1024, 1024] when the --pretrained file has its op_threshs; "
                             "xrv: torchxrayvision's", choices=("auto", "xrv"))
    image_size: int = opt(256, "pixels, square (the paper: 256, no crop)", at_least=1, at_most=4096)
    channels: int = opt(3, "model input: 3 = the grey image in each of R, G, B (the paper); "
                        "1 = grey only, conv1's ImageNet weights summed over RGB", choices=(3, 1))
    epochs: int = opt(60, "at most this many epochs", at_least=1)
    patience: int = opt(15, "stop after this many epochs without a better val balanced accuracy (val mAP on "
                        "multi-label shards)", at_least=1)
    batch_size: int = opt(256, "images per step on each process: under torchrun each of N ranks takes this many, so "
                          "a step sees N x this; --lr is not scaled with it (linear rule: scale --lr by N yourself)",
                          at_least=1)
    lr: float = opt(1e-4, "learning rate (the peak, with a schedule)", above=0)
    optimizer: str = opt("adam", "adam (the paper) | adamw (decoupled weight decay) | sgd (momentum 0.9, Nesterov)",
                         choices=("adam", "adamw", "sgd"))
    weight_decay: float = opt(0.0, "weight decay (not on biases and norm layers' weights)", at_least=0)
    schedule: str = opt("constant", "learning rate per step: constant (the paper) | cosine (to 0 at the last step) | "
                        "step (x0.1 at 50%% and 75%% of --epochs); DRW's factor multiplies it",
                        choices=("constant", "cosine", "step"))
    warmup_epochs: float = opt(0.0, "linear warm-up from 0 over this many epochs, per step", at_least=0)
    ema_decay: float = opt(0.0, "keep an exponential moving average of the weights with this decay per step (e.g. "
                           "0.999); it is what is validated and saved in best.pt (0: none)", at_least=0, below=1)
    grad_clip: float = opt(0.0, "clip the gradients' total norm to this (0: no clipping)", at_least=0)
    drop_path: float = opt(0.0, "stochastic depth rate (timm models)", at_least=0, below=1)
    head_lr_factor: float = opt(1.0, "the head's learning rate is --lr times this", above=0)
    freeze_backbone_epochs: int = opt(0, "train only the head for this many first epochs", at_least=0)
    loss_param: dict = opt({}, "NAME=VALUE: a parameter of the method's loss (repeatable: gamma=3, beta=0.999, "
                           "s=30, max_m=0.5, gamma_neg=4...)")
    precision: str = opt("auto", "auto: fp16 on CUDA, fp32 on CPU", choices=("auto", "fp16", "bf16", "fp32"))
    channels_last: bool = opt(True, "channels-last memory format (faster convolutions on GPUs)")
    compile: bool = opt(False, "torch.compile the train step")
    loader: str = opt("auto", "auto: DALI when installed", choices=("auto", "dali", "torch"))
    workers: int = opt(4, "loader worker processes (threads for DALI)", at_least=0)
    seed: int = opt(0, "seed of the weights, the sample order and the augmentations", at_least=0)
    deterministic: bool = opt(False, "deterministic kernels (exact resume on CPU)")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    init_from: str = opt("", "stage-1 run dir (crt, tau-norm: a ce run; crt-bce: a bce run)")
    allow_unfinished: bool = opt(False, "--init-from a stage-1 run that has not finished (said in the summary)")
    resume: str = opt("auto", "auto: continue or skip the run in --out; never: start over, moving an existing "
                      "run aside to OUT.old-<time>", choices=("auto", "never"))
    checkpoint_minutes: float = opt(10.0, "also checkpoint mid-epoch this often (0: every step)", at_least=0)
    hflip: bool = opt(True, "random horizontal flip")
    rotation: float = opt(15.0, "random rotation up to this many degrees", at_least=0, at_most=180)
    rrc_scale: float = opt(1.0, "random-resized-crop minimum area, in (0, 1] (1: no crop)", above=0, at_most=1)
    tta: str = opt("none", "test-time augmentation of the final evaluation: logits averaged over the image and its "
                   "horizontal flip (hflip), and a 1.1x zoom of both (hflip-scale)", choices=TTA_CHOICES)
    mixup_alpha: float = opt(0.2, "MixUp / Balanced-MixUp / mixup-bce: lambda ~ Beta(alpha, alpha)", above=0)
    drw_epoch: int = opt(10, "DRW: weights and lr scale from this epoch (0-based)", at_least=0)
    drw_lr_factor: float = opt(0.1, "DRW: the learning rate is multiplied by this from --drw-epoch", above=0)
    crt_features: bool = opt(False, "cRT on backbone features computed once (no augmentation): seconds, not hours")
    sync_bn: bool = opt(False, "with torchrun: SyncBatchNorm (default: each rank's BatchNorm on its own batch)")
    paper_bn_bug: bool = opt(False, "reproduce the paper's code: BatchNorm in eval mode from epoch 2 on")
    paper_ldam: bool = opt(False, "reproduce the paper's code: LDAM on a plain linear head")
    tensorboard: bool = opt(True, "write TensorBoard events when tensorboard is installed")
    folds: int = opt(0, "K > 1: re-split the training images into K patient-disjoint folds; --fold validates, the "
                     "rest trains (the shards' val is left out, test untouched); 0: the shards' own splits", at_least=0)
    fold: int = opt(0, "with --folds: which fold validates, 0 to K - 1", at_least=0)
    fold_seed: int = opt(0, "with --folds: the seed of the patient-grouped folds (the same for every --seed)",
                         at_least=0)

    # fields that may differ on resume without changing the result; the shards are compared by their
    # index hash, not their path, so a moved or copied shards dir or run dir still resumes
    RESUMABLE_CHANGES = ("resume", "workers", "checkpoint_minutes", "tensorboard", "compile", "device", "shards",
                         "out")

    def __post_init__(self):
        for f in fields(self):
            setattr(self, f.name, checked(f, getattr(self, f.name)))
        if self.tta != "none" and self.crt_features:
            raise UsageError("--tta flips images and --crt-features evaluates cached features; drop one of them")
        if self.folds == 1:
            raise UsageError("--folds 1: one fold leaves nothing to train on; give K >= 2, or 0 for the shards' splits")
        if self.fold and self.fold >= max(self.folds, 1):
            raise UsageError(f"--fold {self.fold}: " + (f"the folds are 0 to {self.folds - 1} (--folds {self.folds})"
                                                        if self.folds else "needs --folds K (K > --fold)"))
        if self.model not in MODELS:
            check_model_name(self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def checked(f: dataclasses.Field, value):
    """``value`` if the field takes it (an int where a float goes becomes a float), else a UsageError naming
    the flag and what it takes."""
    typ = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}.get(f.type, f.type)
    if typ is dict:
        return loss_params(value)
    if typ is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            value = float(value)  # YAML reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UsageError(f"{flag(f.name)} {value!r}: not a{'n' if typ is int else ''} {typ.__name__}")
    m = f.metadata
    if "choices" in m and value not in m["choices"]:
        raise UsageError(f"{flag(f.name)} {value!r}: not one of {', '.join(map(str, m['choices']))}")
    for rule, ok, text in (("at_least", lambda lo: value >= lo, ">="), ("above", lambda lo: value > lo, ">"),
                           ("at_most", lambda hi: value <= hi, "<="), ("below", lambda hi: value < hi, "<")):
        if rule in m and not ok(m[rule]):
            raise UsageError(f"{flag(f.name)} {value}: must be {text} {m[rule]}")
    return value


def check_saved_config(path: Path, meta: dict, needed=("model", "method", "image_size")) -> dict:
    """The ``config`` of a run's config.json, each known setting checked as its flag is (an altered or damaged
    file would otherwise reach the model builder: image_size 60000 allocates gigabytes); returns it."""
    fix = "the file was altered or is damaged; rerun the run's fit command into a new --out"
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise UsageError(f"{path}: no 'config' mapping of settings; {fix}")
    missing = [k for k in needed if k not in cfg]
    if missing:
        raise UsageError(f"{path}: its config has no {', '.join(missing)}; {fix}")
    by_name = {f.name: f for f in fields(FitConfig)}
    for key, value in cfg.items():
        if key in by_name:
            try:
                checked(by_name[key], value)
                if key == "model" and value not in MODELS:
                    check_model_name(value)
            except UsageError as e:
                raise UsageError(f"{path}: {e}; {fix}") from None
    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) \
            or len(set(names)) != len(names):
        raise UsageError(f"{path}: 'class_names' is not a list of distinct class names; {fix}")
    if "input" in meta and not _is_input_spec(meta["input"], cfg.get("channels", 3)):
        raise UsageError(f"{path}: 'input' is not the model's input spec (scaling, and a mean and a positive std "
                         f"per input channel); {fix}")
    return cfg


def _is_input_spec(spec, channels) -> bool:
    """{scaling, mean, std, ...} as ``train.models.input_spec`` writes it, for ``channels`` input channels."""
    def numbers(v, positive=False):
        return isinstance(v, list) and len(v) == channels and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 or not positive)
            for x in v)
    return isinstance(spec, dict) and isinstance(spec.get("scaling"), str) and numbers(spec.get("mean")) \
        and numbers(spec.get("std"), positive=True)


def loss_params(value) -> dict:
    """--loss-param's NAME=VALUE strings (or a config file's mapping) as {name: number}."""
    if isinstance(value, (list, tuple)):
        pairs = {}
        for item in value:
            name, eq, text = str(item).partition("=")
            if not eq or not name.strip():
                raise UsageError(f"--loss-param {item!r}: give NAME=VALUE, e.g. --loss-param gamma=2")
            pairs[name.strip()] = text.strip()
        value = pairs
    if not isinstance(value, dict):
        raise UsageError(f"--loss-param {value!r}: give NAME=VALUE, e.g. --loss-param gamma=2")
    out = {}
    for name, v in value.items():
        try:
            out[name] = float(v) if not isinstance(v, bool) else None
        except (TypeError, ValueError):
            out[name] = None
        if out[name] is None:
            raise UsageError(f"--loss-param {name}={v}: the value is not a number")
    return out


def help_text(f: dataclasses.Field) -> str:
    if f.metadata.get("required"):
        return f"{f.metadata['help']} (required, unless --config sets it)"
    shown = "none" if f.default in ("", dataclasses.MISSING) else f.default
    return f"{f.metadata['help']} (default: {shown})"


def add_flags(parser: argparse.ArgumentParser, exclude=()) -> None:
    """One flag per field. The parsed value is absent unless given (default SUPPRESS), so that a --config file
    fills the rest; the help shows the field's default."""
    parser.add_argument("--config", default=argparse.SUPPRESS,
                        help="take every setting from this file: a run's config.json, or a JSON or YAML mapping of "
                        "these flags' names (image_size: 256); flags given override it")
    for f in fields(FitConfig):
        if f.name in exclude:
            continue
        kw = {"help": help_text(f), "default": argparse.SUPPRESS}
        if f.type in (bool, "bool"):
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kw)
            continue
        if f.type in (dict, "dict"):
            parser.add_argument(flag(f.name), action="append", metavar="NAME=VALUE", **kw)
            continue
        typ = {"int": int, "float": float, "str": str}.get(f.type, f.type)
        choices = f.metadata.get("choices")
        if choices and f.name != "method":
            kw["metavar"] = "{" + ",".join(map(str, choices)) + "}"
        parser.add_argument(flag(f.name), type=typ, **kw)


def read_config_file(path) -> dict:
    """FitConfig fields from a run's config.json or summary.json ({"config": {...}, ...}), or from a JSON or
    YAML mapping of the fields; an unknown key is an error naming it."""
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as e:
        raise UsageError(f"--config {path}: {e.strerror}") from None
    except (ValueError, yaml.YAMLError) as e:
        raise UsageError(f"--config {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} "
                         f"({str(e).splitlines()[0]})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: not a mapping of settings (like a run's config.json)")
    names = [f.name for f in fields(FitConfig)]
    for key in data:
        if key not in names:
            raise UsageError(f"--config {path}: unknown setting {key!r}; the settings are {', '.join(names)}")
    return data


def from_args(args: argparse.Namespace) -> FitConfig:
    """The defaults, overridden by the --config file, overridden by the flags given."""
    settings = read_config_file(args.config) if getattr(args, "config", None) else {}
    settings.update({f.name: getattr(args, f.name) for f in fields(FitConfig) if hasattr(args, f.name)})
    return FitConfig(**settings)


def config_changes(saved: dict, current: dict) -> list[str]:
    """What differs; a field the saved config lacks came later and ran as its default."""
    saved = {**FitConfig().to_dict(), **saved}
    return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in current.items()
            if k not in FitConfig.RESUMABLE_CHANGES and saved.get(k) != v]
