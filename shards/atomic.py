"""Every file this project writes: crash-safe (it appears under its final name only when complete) and link-safe
(its temp file is created exclusively under an unpredictable name; a link at the final name is refused)."""
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import UsageError

# what AtomicFile names its temp files (mkstemp's 8 random characters), and the .NAME.tmpPID of older versions
_TMP = re.compile(r"^\.(?P<final>.+)\.tmp(-[a-z0-9_]{8}|\d+)$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would have given a new file (mkstemp gives 0600)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refuse_target(path: Path) -> None:
    """A link or a folder at a path this tool is to write is someone else's: a link planted in a shared run or
    shards dir could point at any file of the user's."""
    if os.path.islink(path):
        raise UsageError(f"{path} is a symbolic link (to {os.readlink(path)}); this tool never writes through a "
                         f"link, which could overwrite a file elsewhere; delete the link (or give another --out) "
                         f"and rerun")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder; give the path of a file to write (or move the folder aside)")


class AtomicFile:
    """``.file``: a temp file beside ``final``, created with O_EXCL|O_NOFOLLOW (tempfile.mkstemp) under a name no
    one can guess; ``commit()`` fsyncs it and renames it to ``final``; ``abort()`` deletes it."""

    def __init__(self, final: Path, mode: str = "wb"):
        self.final = Path(final)
        refuse_target(self.final)
        fd, name = tempfile.mkstemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent)
        self.tmp = Path(name)
        os.fchmod(fd, _MODE)
        self.file = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""}))

    def close(self) -> None:
        """Flush, fsync and close the temp file (it keeps its temp name until ``commit()``)."""
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()

    def commit(self) -> None:
        self.close()
        refuse_target(self.final)  # planted while this file was written
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)

    def abort(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.file.close()
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(final: Path, mode: str = "wb"):
    """``with atomic_file(path) as f: write to f``: ``path`` gets the whole file, or (on any error) is untouched."""
    out = AtomicFile(final, mode)
    try:
        yield out.file
    except BaseException:
        out.abort()
        raise
    try:
        out.commit()
    except BaseException:
        out.abort()
        raise


def write_atomic(final: Path, data: bytes | str) -> None:
    with atomic_file(final, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def open_log(path: Path):
    """``path`` opened for appending (text), never through a link: a planted ``train.log -> ~/.bashrc`` would
    otherwise get every log line."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, _MODE)
    except OSError as e:
        if os.path.islink(path):
            refuse_target(path)
        raise UsageError(f"{path}: cannot open the log ({e.strerror}); make it a writable file or delete it") from None
    if not os.path.isfile(path) or os.fstat(fd).st_nlink > 1:  # a FIFO, or a hard link to a file elsewhere
        os.close(fd)
        raise UsageError(f"{path} is not a plain file of its own (a FIFO, or a hard link); delete it and rerun")
    return os.fdopen(fd, "a", encoding="utf-8")


def remove_stale_tmp(folder: Path, finals: Iterable[str]) -> None:
    """Delete what a killed writer left of these files (``.<name>.tmp-XXXXXXXX``), and no other file."""
    finals = set(finals)
    for p in Path(folder).iterdir():
        m = _TMP.match(p.name)
        if m and m["final"] in finals and p.is_file() and not p.is_symlink():
            p.unlink()


def make_dir(path: Path) -> Path:
    """``mkdir -p path``, refusing a link or a file in its place: a planted ``RUN/report -> ~`` would take every
    file written into it."""
    path = Path(path)
    if path.is_symlink():
        refuse_target(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} is a file where this tool writes a folder; move it aside and rerun")
    path.mkdir(parents=True, exist_ok=True)
    return path
