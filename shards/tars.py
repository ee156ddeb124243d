"""The image bytes of a shards dir, read from its tar files at the offsets the index records.

Imports neither pandas nor torch: DALI's source worker processes hold one of these, and every module
they import costs each of them memory and start-up time.

Reads use ``os.pread`` on a descriptor opened once per shard and process, not mmap: a tar truncated
while mapped kills the process with SIGBUS, while a short read can be named. A truncated shard would
otherwise hand the decoder a few bytes or none, and DALI's decoder crashes on those without a message.
"""
import os
import stat
from pathlib import Path

import numpy as np

from .errors import UsageError


class ShardFiles:
    """``read_bytes(shard, offset, size)`` over the tars of ``root``; ``check()`` (run when this is made)
    finds each tar holding the last byte the index places in it."""

    def __init__(self, root: Path, shards, offsets, sizes, keys):
        self.root = Path(root)
        self._fds = {}
        shards, keys, sizes = np.asarray(shards, object), np.asarray(keys, object), np.asarray(sizes, np.int64)
        ends = np.asarray(offsets, np.int64) + sizes
        _, which = np.unique(shards, return_inverse=True)
        order = np.lexsort((ends, which))  # by shard, then by where its image ends
        self._last = {shards[i]: (keys[i], int(ends[i] - sizes[i]), int(sizes[i]))  # each shard's last image
                      for i in order[np.flatnonzero(np.diff(which[order], append=-1))]}
        self.check()

    def check(self) -> None:
        """Raise ``UsageError`` naming the first shard that is missing or too short for the index."""
        for shard, (key, offset, size) in self._last.items():
            try:
                st = (self.root / shard).stat()
            except FileNotFoundError:
                raise self.damaged(shard, f"missing, but the index lists image {key} in it") from None
            if not stat.S_ISREG(st.st_mode):  # a link to /dev/zero or a FIFO would be read forever
                raise self.damaged(shard, "not a plain file (a device, FIFO or folder)")
            have = st.st_size
            if have < offset + size:
                raise self.damaged(shard, f"{have} bytes, but the index places image {key} at bytes "
                                          f"{offset}..{offset + size}: the shard is truncated or not this dir's")

    def damaged(self, shard: str, what: str) -> UsageError:
        return UsageError(f"{self.root / shard}: {what}; check the dir with `python -m ingest verify {self.root}` "
                          "and rebuild what it names with `python -m ingest build-shards`")

    def read_bytes(self, shard: str, offset: int, size: int) -> bytes:
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.root / shard, os.O_RDONLY)
        data = os.pread(fd, size, offset)
        if len(data) != size:  # the file shrank after it was checked
            raise self.damaged(shard, f"{len(data)} of the {size} bytes at {offset} read: the shard was cut")
        return data

    def __getstate__(self):  # descriptors do not pickle; each process opens its own
        return {**self.__dict__, "_fds": {}}

    def __del__(self):
        for fd in self._fds.values():
            os.close(fd)
