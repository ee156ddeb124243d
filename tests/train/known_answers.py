"""Known answers of whole runs, recorded once and compared ever after: a change that means to change no result
(a reorganisation, a clean-up) must leave them bit-identical.

Seven methods that between them pass every stage, head, mixing, DRW, loss family and task (``RUNS``) are
trained on the test suite's tiny shards through the command line (``python -m train fit``, whatever module
it lives in), deterministically on the CPU. What is kept of each: the logits and keys of every predictions
file and metrics.csv without its wall-clock columns. ``record`` also keeps the run dir of a ``ce`` run
stopped mid-epoch by SIGTERM (its ``last.pt`` and ``best.pt``), so that checkpoints written before a change
are shown to resume after it.

    python tests/train/known_answers.py record   # once, at the commit before the change: tests/data/known-answers/
    pytest tests/train/test_known_answers.py     # after it: equal to the bit, on the CPU model that recorded them
"""
import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "known-answers"
WALL_CLOCK_COLUMNS = ("images_per_s", "seconds")
INTERRUPTED_FILES = ("config.json", "last.pt", "best.pt", "metrics.csv")  # what a resume reads of a run dir
# name -> (method, shards kind, the run it starts from, extra flags)
RUNS = {
    "ce": ("ce", "single", None, []),
    "rw-ldam-drw": ("rw-ldam-drw", "single", None, []),
    "balanced-mixup": ("balanced-mixup", "single", None, []),
    "crt-features": ("crt", "single", "ce", ["--crt-features"]),
    "tau-norm": ("tau-norm", "single", "ce", []),
    "bce": ("bce", "multi", None, []),
    "crt-bce": ("crt-bce", "multi", "bce", []),
}
SETTINGS = ["--model", "tiny", "--pretrained", "none", "--image-size", "32", "--epochs", "3", "--patience", "5",
            "--batch-size", "32", "--lr", "1e-3", "--loader", "torch", "--workers", "0", "--deterministic",
            "--drw-epoch", "1", "--no-tensorboard", "--device", "cpu"]


def fit_command(shards: Path, out: Path, name: str, runs: Path) -> list[str]:
    method, _, start, extra = RUNS[name]
    init = ["--init-from", str(runs / start)] if start else []
    return [sys.executable, "-m", "train", "fit", "--shards", str(shards), "--out", str(out), "--method", method,
            *SETTINGS, *init, *extra]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def train(shards: dict, runs: Path, names=tuple(RUNS)) -> None:
    for name in names:  # RUNS lists each stage-1 run before the runs that start from it
        cmd = fit_command(shards[RUNS[name][1]], runs / name, name, runs)
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def answers(run: Path) -> dict:
    """{file name: array or text} of a finished run: each predictions file's keys and logits, metrics.csv."""
    out = {}
    for path in sorted((run / "predictions").glob("*.parquet")):
        table = pd.read_parquet(path)
        out[f"{path.stem}.keys"] = table["key"].to_numpy().astype(str)
        out[f"{path.stem}.logits"] = np.stack(table["logits"].to_numpy()).astype(np.float64)
    if (run / "metrics.csv").exists():
        metrics = pd.read_csv(run / "metrics.csv", dtype=str).drop(columns=list(WALL_CLOCK_COLUMNS))
        out["metrics.csv"] = metrics.to_csv(index=False)
    return out


def interrupted_run(shards: Path, out: Path) -> Path:
    """A ``ce`` run stopped by SIGTERM in its second epoch (its last.pt written mid-epoch): its run dir."""
    cmd = fit_command(shards, out, "ce", out.parent) + ["--checkpoint-minutes", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    log = out / "train.log"
    while proc.poll() is None and "epoch 1: train loss" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=300)
    if proc.returncode != 75:
        raise RuntimeError(f"expected an interrupted run (exit 75), got {proc.returncode}:\n{stdout[-3000:]}")
    return out


def build_shards(root: Path) -> dict:
    """The test suite's tiny shards (tests/conftest.py: scale 0.002, 64 px sources, 32 px shards of 64)."""
    raw = root / "raw"
    subprocess.run([sys.executable, "-m", "ingest", "synth", "--out", str(raw), "--scale", "0.002",
                    "--image-size", "64", "--seed", "0", "--workers", "1"], check=True, cwd=ROOT)
    shards = {}
    for kind, dataset in (("single", "nih-cxr-lt"), ("multi", "nih-cxr-lt-multilabel")):
        shards[kind] = root / f"shards-{kind}"
        subprocess.run([sys.executable, "-m", "ingest", "build-shards", "--images", str(raw), "--labels",
                        str(raw / "labels"), "--out", str(shards[kind]), "--dataset", dataset, "--size", "32",
                        "--shard-size", "64", "--workers", "1"], check=True, cwd=ROOT)
    return shards


def record(root: Path) -> None:
    shards = build_shards(root)
    runs = root / "runs"
    train(shards, runs)
    DATA.mkdir(parents=True, exist_ok=True)
    arrays, texts = {}, {}
    for name in RUNS:
        for key, value in answers(runs / name).items():
            (texts if isinstance(value, str) else arrays)[f"{name}/{key}"] = value
    np.savez_compressed(DATA / "predictions.npz", **arrays)
    index_sha = {k: json.loads((v / "manifest.json").read_text())["index_sha256"] for k, v in shards.items()}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    (DATA / "record.json").write_text(json.dumps({"commit": commit, "cpu": cpu_model(), "index_sha256": index_sha,
                                                  "settings": SETTINGS, "metrics": texts}, indent=1) + "\n")
    stopped = interrupted_run(shards["single"], root / "interrupted" / "ce")
    (DATA / "interrupted-ce").mkdir(exist_ok=True)
    for name in INTERRUPTED_FILES:
        (DATA / "interrupted-ce" / name).write_bytes((stopped / name).read_bytes())
    print(f"recorded {len(RUNS)} runs at {commit[:7]} on {cpu_model()} into {DATA}")


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python tests/train/known_answers.py record")
    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp))
