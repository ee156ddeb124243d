"""Pretrained weights from a local file: read a state dict (.safetensors, .pth / .pt, .bin, a Hugging Face cache
dir), match it to a backbone whose head differs, and say what was dropped and what starts fresh.

A checkpoint made for another task (a CheXNet-style 14-class head, torchxrayvision's 18 outputs and their
``op_threshs``) loads its backbone: tensors the backbone lacks, or whose shape differs, are dropped; a 3-channel
first convolution loaded into a 1-channel one is summed over R, G and B (``train.models.grey_input``'s rule).
"""
import logging
import re
from pathlib import Path

import torch
from torch import nn

from shards.errors import UsageError

from .rundir.checkpoint import torch_load

log = logging.getLogger(__name__)

# Fewer of the backbone's tensors than this share found in the file means the file is another architecture.
MIN_MATCHED = 0.9
# Wrappers that prefix a backbone's keys: torchxrayvision's ResNet (model.), DataParallel (module.), ours.
PREFIXES = ("", "model.", "module.", "backbone.", "encoder.", "module.model.")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin", "pytorch_model.pth")


class WeightsUnavailable(UsageError):
    pass


def weights_file(path: str) -> Path:
    """The file to read: ``path`` itself, or in a Hugging Face cache dir (models--org--name/snapshots/*/ or a
    snapshot dir) its model.safetensors / pytorch_model.bin."""
    p = Path(path)
    if p.is_dir():
        found = sorted(f for name in WEIGHT_FILES for f in p.rglob(name))
        if not found:
            raise WeightsUnavailable(f"--pretrained {path}: a dir without {' or '.join(WEIGHT_FILES[:2])}; give a "
                                     f"state dict file or a Hugging Face cache dir of the model")
        return found[-1]  # the newest snapshot sorts last by its commit hash only by chance: they rarely differ
    if not p.is_file():
        raise WeightsUnavailable(f"--pretrained {path}: no such file; give a state dict (.safetensors, .pth, .bin) "
                                 f"or a Hugging Face cache dir, 'imagenet' or 'none'")
    return p


def read_state(path: str) -> dict[str, torch.Tensor]:
    """The state dict in a file (a checkpoint's ``model`` / ``state_dict`` entry when it is one)."""
    f = weights_file(path)
    fix = "save model.state_dict() with torch.save or safetensors"
    if f.suffix != ".safetensors":
        state = torch_load(f, fix)  # tensors and plain data only, size-capped: the file is from elsewhere
    else:
        from safetensors.torch import load_file

        try:
            state = load_file(str(f))
        except Exception as e:  # a truncated or foreign file: one line, not a traceback
            raise WeightsUnavailable(f"--pretrained {path}: cannot read a state dict from {f.name} "
                                     f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); {fix}") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"--pretrained {path}: holds a {type(state).__name__}, not a state dict")
    return state


def _fits(want: torch.Tensor, have: torch.Tensor) -> torch.Tensor | None:
    """``have`` shaped for ``want``: as is, or an RGB first convolution summed to a grey one; else None."""
    if want.shape == have.shape:
        return have
    if want.dim() == 4 and want.shape[1] == 1 and have.shape[1] == 3 and want.shape[0] == have.shape[0] \
            and want.shape[2:] == have.shape[2:]:
        return have.sum(1, keepdim=True)
    return None


def match_state(net: nn.Module, state: dict) -> tuple[dict, list[str], list[str]]:
    """(the tensors of ``net`` found in ``state``, the file's keys dropped, ``net``'s keys left as initialised),
    under the key prefix that matches most."""
    own = net.state_dict()
    best = {}
    for prefix in PREFIXES:
        found = {}
        for key, want in own.items():
            have = state.get(prefix + key)
            if isinstance(have, torch.Tensor) and (fitted := _fits(want, have)) is not None:
                found[key] = fitted
        if len(found) > len(best):
            best, used = found, prefix
    if not best:
        return {}, sorted(state), sorted(own)
    dropped = sorted(k for k in state if not (k.startswith(used) and k[len(used):] in best))
    return best, dropped, sorted(k for k in own if k not in best)


def _names(keys: list[str], most: int = 8) -> str:
    return "none" if not keys else ", ".join(keys[:most]) + (f" and {len(keys) - most} more" if len(keys) > most
                                                             else "")


def load_backbone(net: nn.Module, path: str, name: str) -> None:
    """Load the backbone's tensors from ``path``; the head's (and anything else the backbone lacks) is dropped,
    with one line saying so. Refused when under MIN_MATCHED of the backbone's tensors are found."""
    state = read_state(path)
    found, dropped, fresh = match_state(net, state)
    total = len(net.state_dict())
    if len(found) < MIN_MATCHED * total:
        raise WeightsUnavailable(f"--pretrained {path}: only {len(found)} of the {total} tensors of a {name} "
                                 f"backbone are in it (the file holds {len(state)}); not weights of this --model")
    with torch.no_grad():
        own = net.state_dict()
        for key, value in found.items():
            own[key].copy_(value)
    log.info("--pretrained %s: %d of %d backbone tensors loaded; dropped %d (%s); newly initialised %d (%s)",
             path, len(found), total, len(dropped), _names(dropped), len(fresh), _names(fresh))


# The words in a --pretrained-source that mean a dataset's images were in the weights' training set: NIH's
# ChestX-ray14 (torchxrayvision's nih, rsna and all weights; their NIH split was random and not saved),
# MIMIC-CXR (mimic_nb, mimic_ch, all), PadChest (pc, all).
SOURCE_WORDS = {"nih": ("nih", "chestx", "chestxray14", "cxr14", "rsna", "all"), "mimic": ("mimic", "all"),
                "padchest": ("padchest", "pc", "all"), "chexpert": ("chexpert", "chex", "all")}


def leakage(source: str, dataset: str) -> str | None:
    """A warning when the weights' stated source (``--pretrained-source``) includes the evaluated dataset."""
    words = set(re.split(r"[^a-z0-9]+", source.lower()))
    family = next((f for f in SOURCE_WORDS if dataset.lower().startswith(f)), None)
    hits = sorted(words & set(SOURCE_WORDS.get(family, ())))
    if not source or not hits:
        return None
    return (f"--pretrained-source {source!r} names {', '.join(hits)}: the weights may have seen this run's "
            f"{dataset} val and test images (test-set leakage); use weights trained without them")
