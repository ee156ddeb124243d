"""Crash-safe file writes: a file appears under its final name only when complete."""
import os
import re
from pathlib import Path
from typing import Iterable

_TMP = re.compile(r"^\.(?P<final>.+)\.tmp\d+$")  # what tmp_path() names


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and rename it to ``final`` (atomic on POSIX)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


def tmp_path(final: Path) -> Path:
    final = Path(final)
    return final.with_name(f".{final.name}.tmp{os.getpid()}")


def remove_stale_tmp(folder: Path, finals: Iterable[str]) -> None:
    """Delete what a killed writer left of these files (``.<name>.tmp<pid>``), and no other file."""
    finals = set(finals)
    for p in Path(folder).iterdir():
        m = _TMP.match(p.name)
        if m and m["final"] in finals and p.is_file():
            p.unlink()


def write_atomic(final: Path, data: bytes) -> None:
    tmp = tmp_path(final)
    tmp.write_bytes(data)
    commit(tmp, Path(final))
