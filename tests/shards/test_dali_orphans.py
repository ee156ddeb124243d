"""kill -9 of a DALI fit leaves no worker or resource tracker behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_flags


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        todo += list(kids - found)
        found |= kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill_9_of_a_dali_fit_leaves_no_worker_or_resource_tracker(shards_dir, tmp_path):
    pytest.importorskip("nvidia.dali")
    root = Path(__file__).resolve().parents[2]
    fit = subprocess.Popen([sys.executable, "-m", "train", "fit", "--shards", str(shards_dir), "--out",
                            str(tmp_path / "run"), *tiny_flags(loader="dali", workers=2, epochs=500, patience=500,
                                                               device="cpu")],
                           cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while "epoch 1:" not in ((tmp_path / "run" / "train.log").read_text() if (tmp_path / "run" / "train.log").exists()
                            else ""):
        assert time.time() < deadline and fit.poll() is None
        time.sleep(0.5)
    children = descendants(fit.pid)
    assert len(children) >= 2  # the source workers (and the resource tracker)
    os.kill(fit.pid, signal.SIGKILL)
    fit.wait()
    deadline = time.time() + 30
    while any(alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.5)
    left = [p for p in children if alive(p)]
    for p in left:  # not to leak them into the rest of the session
        os.kill(p, signal.SIGKILL)
    assert not left
