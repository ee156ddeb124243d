"""Checkpoints: one dict, written to a temp file, fsynced, renamed; loaded with weights_only=True."""
import errno
import os
import pickle
import shutil
import stat
import zipfile
from pathlib import Path

import torch

from shards.atomic import AtomicFile
from shards.errors import UsageError

# what every checkpoint of this tool holds, whoever wrote it (last.pt and best.pt)
CHECKPOINT_KEYS = ("model", "config")
MAX_TORCH_FILE_BYTES = 8 << 30  # a ViT-L's weights with AdamW's two moments: under 4 GiB


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


def check_torch_file(path: Path, fix: str) -> None:
    """Before torch.load reads ``path``: at most MAX_TORCH_FILE_BYTES, and, as a zip (torch.save's format), no
    compressed member: torch.save stores them as they are, and a deflated member of a few hundred KB can
    expand to gigabytes in memory."""
    size = os.stat(path).st_size
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise UsageError(f"{path}: not a plain file (a device, FIFO or folder); {fix}")
    if size > MAX_TORCH_FILE_BYTES:
        raise UsageError(f"{path}: {size / 2 ** 30:.1f} GiB, over the {MAX_TORCH_FILE_BYTES >> 30} GiB this tool "
                         f"loads (its largest models' checkpoints are far smaller); {fix}")
    if not zipfile.is_zipfile(path):
        return  # torch's legacy format, or not a checkpoint at all: torch.load names it
    try:
        with zipfile.ZipFile(path) as z:
            packed = [i.filename for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable checkpoint ({e}); {fix}") from None
    if packed:
        raise UsageError(f"{path}: holds compressed members ({packed[0]}), which torch.save never writes; it "
                         f"was not written by this tool and is not loaded; {fix}")


def torch_load(path: Path, fix: str):
    """A .pt file from elsewhere must not be able to run code: tensors and plain data only. A file that is
    too big, truncated, empty or holds other objects is a UsageError naming it and ``fix``."""
    check_torch_file(path, fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never for a file from elsewhere
        raise UsageError(f"{path}: holds objects other than tensors and plain data, so it was not written by this "
                         f"tool and is not loaded (it could run code); {fix}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:  # OSError: EINVAL of a zip cut under 64 KiB
        why = str(e).splitlines()[0][:80] if str(e) else "empty"
        raise UsageError(f"{path}: not a readable checkpoint ({why}); {fix}") from None


def load_checkpoint(path: Path, fix: str = "rerun with --resume never to start the run over, or delete it") -> dict:
    """``torch_load``, then the keys every checkpoint of this tool has, its model a state dict of tensors."""
    state = torch_load(path, fix)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise UsageError(f"{path}: not a checkpoint of this tool (no {', '.join(missing)}); {fix}")
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise UsageError(f"{path}: its 'model' is not a state dict (names to tensors); {fix}")
    return state


def load_weights(model: torch.nn.Module, state: dict, path: Path, fix: str) -> None:
    """``model.load_state_dict(state)``; weights of another network are a UsageError naming ``path``."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UsageError(f"{path}: its weights do not fit the network ({str(e).splitlines()[0][:160]}); "
                         f"{fix}") from None


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
