"""Writes one WebDataset tar shard and its DALI ``.idx`` file, reproducibly.

Members are written with mtime 0, mode 0444 and no owner names in plain USTAR
headers (no PAX headers), so the same samples give the same bytes, and the
offset of every member's data is known while writing (header + 512 bytes).
"""
import hashlib
import io
import tarfile
from pathlib import Path

from .atomic import AtomicFile
from .format import TAR_BLOCK, idx_name


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def idx_text(samples: list[list[tuple[str, int, int, str]]]) -> str:
    """DALI's index format (wds2idx v1.2): one line per sample, 'ext offset size name' per component."""
    lines = [f"v1.2 {len(samples)}"]
    lines += [" ".join(f"{ext} {off} {size} {name}" for ext, off, size, name in comps) for comps in samples]
    return "\n".join(lines) + "\n"


class ShardWriter:
    """Add samples, then ``finish()`` (closes, hashes) and ``commit()`` (final names: .idx, then .tar)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._out = AtomicFile(self.path)
        self._idx = None
        self._tar = tarfile.open(fileobj=self._out.file, mode="w", format=tarfile.USTAR_FORMAT)
        self._samples: list[list[tuple[str, int, int, str]]] = []

    def add(self, key: str, components: dict[str, bytes]) -> dict[str, tuple[int, int]]:
        """Write one sample; returns {ext: (data offset, size)}."""
        placed, comps = {}, []
        for ext, data in components.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            offset = self._tar.offset + TAR_BLOCK
            self._tar.addfile(info, io.BytesIO(data))
            placed[ext] = (offset, len(data))
            comps.append((ext, offset, len(data), info.name))
        self._samples.append(comps)
        return placed

    def finish(self) -> dict:
        self._tar.close()
        self._out.close()
        self._idx = AtomicFile(self.path.with_name(idx_name(self.path.name)), "w")
        self._idx.file.write(idx_text(self._samples))
        return {"name": self.path.name, "samples": len(self._samples),
                "bytes": self._out.tmp.stat().st_size, "sha256": file_sha256(self._out.tmp)}

    def commit(self) -> None:
        self._idx.commit()
        self._out.commit()

    def abort(self) -> None:
        try:
            self._tar.close()
        except Exception:  # already closed or half-written: the tmp file goes anyway
            pass
        for out in (self._out, self._idx):
            if out is not None:
                out.abort()


def read_members(path: Path) -> list[tuple[str, int, int]]:
    """(member name, data offset, size) of every regular file in a tar, in order."""
    with tarfile.open(path, "r:") as tar:
        return [(m.name, m.offset_data, m.size) for m in tar.getmembers() if m.isreg()]
