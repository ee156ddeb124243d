"""Checkpoints: one dict, written to a temp file, fsynced, renamed; loaded with weights_only=True."""
from pathlib import Path

import torch

from shards.atomic import commit, tmp_path


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = tmp_path(Path(path))
    torch.save(state, tmp)
    commit(tmp, Path(path))


def load_checkpoint(path: Path) -> dict:
    """A .pt file from elsewhere must not be able to run code: tensors and plain data only."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
