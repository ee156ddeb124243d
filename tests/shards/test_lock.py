"""A run, shards or suite dir is held by one process at a time; tested with real processes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from shards.errors import UsageError
from shards.lock import LOCK_FILE, hold

HOLDER = """
import sys, time
from shards.lock import hold
with hold(sys.argv[1], "test holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def start_holder(folder):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_process_is_refused_naming_the_holder_and_a_dead_ones_lock_is_taken_over(tmp_path):
    p = start_holder(tmp_path / "run")
    try:
        with pytest.raises(UsageError, match=rf"run is in use by test holder, pid {p.pid} on "):
            with hold(tmp_path / "run", "second"):
                pass
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert f"pid {p.pid}" in (tmp_path / "run" / LOCK_FILE).read_text()  # a dead process's lock file stays
    with hold(tmp_path / "run", "second"):
        assert f"second, pid {os.getpid()}" in (tmp_path / "run" / LOCK_FILE).read_text()
    assert (tmp_path / "run" / LOCK_FILE).read_text() == ""


def test_a_lock_file_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "victim").write_text("precious")
    (tmp_path / "run" / LOCK_FILE).symlink_to(tmp_path / "victim")
    with pytest.raises(UsageError, match="cannot open the lock file"):
        with hold(tmp_path / "run", "fit"):
            pass
    assert (tmp_path / "victim").read_text() == "precious"


def _cli(args, cwd):
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)


@pytest.mark.slow
def test_two_fits_into_one_out_one_refused_in_one_line(shards_dir, tmp_path):
    from conftest import tiny_flags

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = ["-m", "train", "fit", "--shards", str(shards_dir), "--out", str(tmp_path / "run"),
            *tiny_flags(epochs=500, patience=500)]
    first = _cli(argv, root)
    deadline = time.time() + 120
    while not (tmp_path / "run" / LOCK_FILE).exists() or not (tmp_path / "run" / LOCK_FILE).read_text():
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.05)
    second = _cli(argv, root)
    _, err = second.communicate(timeout=300)
    assert first.poll() is None  # still training
    first.send_signal(signal.SIGTERM)  # checkpoints and stops
    first.communicate(timeout=300)
    assert second.returncode == 2 and err.count("\n") == 1, err
    assert f"in use by train fit, pid {first.pid}" in err


def test_build_shards_and_suite_refuse_a_dir_another_process_holds(raw_dir, shards_dir, tmp_path):
    from conftest import tiny_flags

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commands = {"shards": ["-m", "ingest", "build-shards", "--images", str(raw_dir), "--labels",
                           str(raw_dir / "labels"), "--out", str(tmp_path / "shards"), "--size", "32"],
                "suite": ["-m", "train", "suite", "--shards", str(shards_dir), "--out", str(tmp_path / "suite"),
                          "--methods", "ce", *tiny_flags(epochs=1)]}
    for folder, argv in commands.items():
        p = start_holder(tmp_path / folder)
        try:
            _, err = _cli(argv, root).communicate(timeout=300)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        assert f"in use by test holder, pid {p.pid}" in err and err.count("\n") == 1, err
        assert sorted(x.name for x in (tmp_path / folder).iterdir()) == [LOCK_FILE]
