"""Checkpoints: one dict, written to a temp file, fsynced, renamed; loaded with weights_only=True."""
import errno
import pickle
import shutil
from pathlib import Path

import torch

from shards.atomic import AtomicFile
from shards.errors import UsageError

# what every checkpoint of this tool holds, whoever wrote it (last.pt and best.pt)
CHECKPOINT_KEYS = ("model", "config")


def save_checkpoint(path: Path, state: dict) -> None:
    """Written through a Python file, so a full disk is an OSError (ENOSPC), not torch's zip-writer message."""
    path = Path(path)
    out = AtomicFile(path)
    try:
        torch.save(state, out.file)
        out.commit()
    except BaseException as e:
        out.abort()
        if not isinstance(e, OSError):
            raise
        if e.errno != errno.ENOSPC:
            raise
        mb = 2 ** 20
        raise UsageError(f"{path}: disk full while checkpointing; it needs about {tensor_bytes(state) / mb:.0f} MiB "
                         f"free, {shutil.disk_usage(path.parent).free / mb:.0f} MiB are. Free some space and rerun "
                         f"the same command: it resumes from the last checkpoint") from None


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in a nested dict / list: about the size of its checkpoint file."""
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def load_checkpoint(path: Path, fix: str = "rerun with --resume never to start the run over, or delete it") -> dict:
    """A .pt file from elsewhere must not be able to run code: tensors and plain data only. A file that is
    truncated, empty, not a checkpoint of this tool or holds other objects is a UsageError naming it and ``fix``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never for a file from elsewhere
        raise UsageError(f"{path}: holds objects other than tensors and plain data, so it was not written by this "
                         f"tool and is not loaded (it could run code); {fix}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        why = str(e).splitlines()[0][:80] if str(e) else "empty"
        raise UsageError(f"{path}: not a readable checkpoint ({why}); {fix}") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise UsageError(f"{path}: not a checkpoint of this tool (no {', '.join(missing)}); {fix}")
    return state


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
