"""A run dir: config.json, metrics.csv, train.log, predictions/, summary.json, last.pt, best.pt."""
import contextlib
import csv
import io
import json
import logging
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from shards.atomic import open_log, write_atomic
from shards.errors import UsageError

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


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1, default=float).encode())


def write_metrics(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]) if history else [], lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_atomic(path, buf.getvalue().encode())


@contextlib.contextmanager
def log_to_file(run_dir: Path):
    """This project's INFO lines (and an error's message, a crash's traceback) into RUN/train.log, also when the
    caller set up no logging: an unconfigured root logger passes WARNING and up only."""
    handler = logging.StreamHandler(open_log(run_dir / "train.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    ours = [logging.getLogger(name) for name in ("train", "shards", "eval")]
    levels = [lg.level for lg in ours]
    for lg in ours:
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        yield
    except UsageError as e:  # the console gets these from __main__, once; the file gets them here
        handler.handle(logging.makeLogRecord({"msg": f"error: {e}", "levelno": logging.ERROR}))
        raise
    except Exception:
        handler.handle(logging.makeLogRecord({"msg": "crashed:", "levelno": logging.ERROR,
                                              "exc_info": sys.exc_info()}))
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        handler.stream.close()
        for lg, level in zip(ours, levels):
            lg.setLevel(level)
