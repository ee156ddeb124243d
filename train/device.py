"""Where a run computes and in what precision: the device flag, the one AMP path, cuDNN's autotuner."""
import os
import platform

import torch

from shards.errors import UsageError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``--device``: auto (CUDA when present), cpu, cuda, cuda:N; a device this machine lacks is a UsageError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    present = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: not a device name; this machine has {', '.join(present)}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type not in ("cpu", "cuda") or (device.type == "cuda" and device.index >= torch.cuda.device_count()):
        hint = "" if torch.cuda.device_count() else (" (torch sees no CUDA GPU: run scripts/gpu-check.sh; the "
                                                     "README's GPU section says which driver this torch needs)")
        raise UsageError(f"--device {name}: no such device here; this machine has {', '.join(present)}{hint}. "
                         f"Use --device auto or one of those")
    return device


def amp_context(cfg, device: torch.device):
    """(precision, amp): ``amp()`` is autocast in that dtype, a no-op for fp32. auto: fp16 on CUDA, else fp32."""
    precision = cfg.precision if cfg.precision != "auto" else ("fp16" if device.type == "cuda" else "fp32")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[precision]
    return precision, lambda: torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def configure_kernels(deterministic: bool) -> None:
    """cuDNN's autotuner picks the fastest convolution for each input shape (a run's shapes are fixed);
    --deterministic turns it off and asks for deterministic kernels instead (exact resume on CPU)."""
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def describe(device: torch.device) -> dict:
    """What config.json records about the hardware and its libraries."""
    cuda = device.type == "cuda"
    return {"device": str(device),
            "device_name": torch.cuda.get_device_name(device) if cuda else (platform.processor() or "cpu"),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None}
