"""The run dir as one thing: open it, decide whether it holds a finished run, resume or refuse.

A run dir holds one run. config.json is its setup, last.pt / best.pt its
checkpoints, summary.json (written last) its result. The run is finished only
when summary.json and config.json belong together (the same config and the
same shards index): a summary next to another run's config is not a finished
run. ``--resume never`` moves an existing run aside to ``OUT.old-<time>``
before anything is written, so a dir never holds parts of two runs, and
nothing of the user's is deleted.
"""
import logging
import os
import shutil
import time
from pathlib import Path

from eval.runs import read_json
from shards.atomic import remove_stale_tmp
from shards.lock import LOCK_FILE
from shards.errors import UsageError

from ..config import FitConfig, config_changes
from ..methods.registry import BASELINE, Method
from .checkpoint import load_checkpoint
from .files import write_json

log = logging.getLogger(__name__)

# what a run writes into its dir; a dir holding none of these holds no run
RUN_FILES = ("config.json", "last.pt", "best.pt", "metrics.csv", "summary.json", "predictions", "train.log",
             "tensorboard", "nonfinite_batch.json")
START_OVER = "rerun with --resume never (it moves the run aside) or give a new --out"


class ResumeRefused(UsageError):
    """The run dir holds a run with another setup; ``changes`` says what differs."""

    def __init__(self, message: str, changes=()):
        super().__init__(message)
        self.changes = list(changes)


def holds_a_run(run: Path) -> bool:
    return run.is_dir() and any((run / name).exists() for name in RUN_FILES)


def open_run_dir(run: Path, resume: str) -> Path | None:
    """Make ``run`` ready to write into; returns where an earlier run was moved to (``--resume never``)."""
    if run.exists() and not run.is_dir():
        raise UsageError(f"--out {run}: is a file, not a directory; give a directory path")
    aside = None
    if resume == "never" and holds_a_run(run):
        aside = run.with_name(f"{run.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{run.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        os.rename(run, aside)
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {run}: cannot create it ({e.strerror}); give a path on a writable file system") \
            from None
    if not os.access(run, os.W_OK):
        raise UsageError(f"--out {run}: not writable; give a path on a writable file system")
    remove_stale_tmp(run, ("last.pt", "best.pt"))  # a checkpoint write killed part-way
    return aside


def remove_unused(run: Path) -> None:
    """After a start that failed on a user's mistake: remove the run dir this command made, when nothing but
    its start-up files is in it."""
    if run.is_dir() and {p.name for p in run.iterdir()} <= {"config.json", "train.log", LOCK_FILE}:
        shutil.rmtree(run)


def finished_summary(run: Path) -> dict | None:
    """summary.json when it belongs to the run's config.json (same config, same index), else None."""
    if not (run / "summary.json").exists() or not (run / "config.json").exists():
        return None
    summary, meta = read_json(run / "summary.json", START_OVER), read_json(run / "config.json", START_OVER)
    same = summary.get("config") == meta.get("config") and summary.get("index_sha256") == meta.get("index_sha256")
    return summary if same else None


def check_resume(cfg: FitConfig, run: Path, index_sha: str) -> dict | None:
    """What to start from: None (a fresh run), the summary of the finished run (a dict without "model"), or the
    last.pt checkpoint. A run with another setup (config, or shards by their index hash) is refused."""
    if cfg.resume == "never":
        return None
    saved = finished_summary(run)
    if saved is None and (run / "summary.json").exists():
        raise UsageError(f"{run}: summary.json does not belong to the config.json beside it (parts of two runs); "
                         f"{START_OVER}")
    if saved is None and (run / "last.pt").exists():
        saved = load_checkpoint(run / "last.pt")
    if saved is None:
        return None
    changes = config_changes(saved["config"], cfg.to_dict())
    if saved.get("index_sha256") != index_sha:
        changes.append("shards index.parquet changed (different images, labels or build)")
    if changes:
        raise ResumeRefused(f"{run} holds a run with another setup: {'; '.join(changes)}. Use a new --out, "
                            f"or --resume never to start this run dir over (the old run is moved aside)", changes)
    return saved


def note_unfinished_stage1(cfg: FitConfig, method: Method) -> str | None:
    """A two-stage method's --init-from: missing or a stage-1 run that has not finished is refused (with
    --allow-unfinished, the latter goes on, and this returns the note to keep)."""
    if not cfg.init_from:
        raise UsageError(f"--method {method.name} starts from a finished stage-1 run: give --init-from RUN, where RUN "
                         f"is the --out of `python -m train fit --method {BASELINE[method.task]} ...` on these shards")
    run = Path(cfg.init_from)
    if finished_summary(run) is not None:
        return None
    if not cfg.allow_unfinished:
        raise UsageError(f"--init-from {run}: the stage-1 run has not finished (no summary.json of its config); "
                         f"finish it by rerunning its fit command, or pass --allow-unfinished to start from its "
                         f"best.pt anyway")
    note = f"started from the best.pt of {run}, a stage-1 run that had not finished (--allow-unfinished)"
    log.warning("%s", note)
    return note


def add_to_summary(run: Path, **fields) -> None:
    write_json(run / "summary.json", {**read_json(run / "summary.json", START_OVER), **fields})
