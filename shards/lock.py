"""One process at a time in a run, shards or suite dir: an advisory lock (flock) on DIR/.lock, which holds its
holder's pid and host. The kernel drops the lock when its holder dies, so a dead process's lock is taken over."""
import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path

from .errors import UsageError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


def _holder(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()


@contextlib.contextmanager
def hold(folder: Path, command: str):
    """Hold ``folder`` (made if missing) for the ``with`` block; a second holder is a UsageError naming the
    first. ``command`` says what holds it (``train fit``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder}: is a file, not a directory; give a directory path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        raise UsageError(f"{folder / LOCK_FILE}: cannot open the lock file ({e.strerror}); give an --out on a "
                         f"writable file system (and delete the file if it is a link)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd) or "another process"
        os.close(fd)
        raise UsageError(f"{folder} is in use by {holder} (its {LOCK_FILE}); two commands writing one dir mix "
                         f"their files: wait for it to finish, or give another --out") from None
    if before := _holder(fd):
        log.info("%s: took over the lock of %s, which is no longer running", folder, before)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{command}, pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # an empty lock file: no one holds it
        os.close(fd)  # releases the lock
