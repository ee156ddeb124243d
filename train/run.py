"""A run dir: config.json, metrics.csv, train.log, predictions/, summary.json, last.pt, best.pt."""
import csv
import io
import json
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from shards.atomic import write_atomic
from shards.writer import file_sha256

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_bacc", "train_auroc", "val_loss", "val_bacc", "val_auroc",
                  "skipped_steps", "images_per_s", "seconds"]
WALL_CLOCK_COLUMNS = ("images_per_s", "seconds")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "numpy", "nvidia-dali-cuda130", "cxr-lt"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                           cwd=Path(__file__).parent)
        return r.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def index_hash(shards: str) -> str:
    return file_sha256(Path(shards) / "index.parquet")


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1, default=float).encode())


def write_metrics(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_atomic(path, buf.getvalue().encode())


def log_to_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)
    return handler
