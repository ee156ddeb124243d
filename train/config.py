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
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from shards.errors import UsageError

from .methods.registry import METHODS

TTA_CHOICES = ("none", "hflip", "hflip-scale")  # train.loop.inference.TTA's names (a test keeps them equal)


def opt(default, help, choices=None, at_least=None, above=None, at_most=None, required=None):
    rules = {"choices": choices, "at_least": at_least, "above": above, "at_most": at_most, "required": required}
    return field(default=default, metadata={"help": help, **{k: v for k, v in rules.items() if v is not None}})


@dataclass
class FitConfig:
    shards: str = opt("", "shards dir (python -m ingest build-shards)", required=True)
    method: str = opt("ce", "a name from `python -m train methods`", choices=tuple(METHODS))
    out: str = opt("", "run dir", required=True)
    model: str = opt("resnet50", "network", choices=("resnet18", "resnet34", "resnet50", "densenet121", "tiny"))
    pretrained: str = opt("imagenet", "imagenet | none | PATH to a state dict")
    image_size: int = opt(256, "pixels, square (the paper: 256, no crop)", at_least=1, at_most=4096)
    channels: int = opt(3, "model input: 3 = the grey image in each of R, G, B (the paper); "
                        "1 = grey only, conv1's ImageNet weights summed over RGB", choices=(3, 1))
    epochs: int = opt(60, "at most this many epochs", at_least=1)
    patience: int = opt(15, "stop after this many epochs without a better val balanced accuracy (val mAP on "
                        "multi-label shards)", at_least=1)
    batch_size: int = opt(256, "images per step on each process: under torchrun each of N ranks takes this many, so "
                          "a step sees N x this; --lr is not scaled with it (linear rule: scale --lr by N yourself)",
                          at_least=1)
    lr: float = opt(1e-4, "Adam learning rate", above=0)
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def checked(f: dataclasses.Field, value):
    """``value`` if the field takes it (an int where a float goes becomes a float), else a UsageError naming
    the flag and what it takes."""
    typ = {"int": int, "float": float, "str": str, "bool": bool}.get(f.type, f.type)
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
                           ("at_most", lambda hi: value <= hi, "<=")):
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
            except UsageError as e:
                raise UsageError(f"{path}: {e}; {fix}") from None
    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) \
            or len(set(names)) != len(names):
        raise UsageError(f"{path}: 'class_names' is not a list of distinct class names; {fix}")
    return cfg


def help_text(f: dataclasses.Field) -> str:
    if f.metadata.get("required"):
        return f"{f.metadata['help']} (required, unless --config sets it)"
    shown = "none" if f.default == "" else f.default
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
