"""Open a shards dir and read its images: the plain-Python reader of the format.

The image bytes of a row sit at ``offset`` (``size`` bytes) in its ``shard``,
so any image can be read without scanning a tar.
"""
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from PIL import Image

from .errors import UsageError
from .format import INDEX_FILE, MANIFEST_FILE, group_of
from .index import class_counts, read_index, targets
from .manifest import check_index_hash, read_manifest
from .tars import ShardFiles

VIEWS = ("train", "val", "test", "balanced-test")


class NotAShardsDir(UsageError, FileNotFoundError):
    pass


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W) array. Only the formats a shard holds are tried."""
    with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as img:
        return np.asarray(img.convert("L"))


def decode_sample(files, shard: str, offset: int, size: int, key: str) -> np.ndarray:
    """``decode`` of one image of a shard; one that does not decode is a UsageError naming the shard and key."""
    try:
        return decode(files.read_bytes(shard, offset, size))
    except (OSError, SyntaxError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise files.damaged(shard, f"image {key} cannot be decoded ({str(e).splitlines()[0][:80]})") from None


@dataclass
class ShardSet:
    root: Path
    index: pd.DataFrame
    manifest: dict
    files: ShardFiles  # the tars, checked against the index when opened
    index_sha256: str  # of index.parquet, checked against the manifest when opened

    @property
    def class_names(self) -> list[str]:
        return self.manifest["class_names"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def groups(self) -> list[str]:
        """head / medium / tail of every class, as the manifest records them."""
        return self.manifest["groups"]

    @property
    def multi_label(self) -> bool:
        return bool(self.manifest.get("multi_label"))

    def targets(self, rows: pd.DataFrame) -> np.ndarray:
        """Class indices (N,), or multi-hot float32 (N, C) for multi-label shards (``shards.index.targets``)."""
        return targets(rows, self.multi_label)

    def train_counts(self) -> np.ndarray:
        return class_counts(self.index, self.num_classes, "train")

    def count_groups(self, head_above: int, tail_below: int) -> list[str]:
        return [group_of(int(n), head_above, tail_below) for n in self.train_counts()]

    def view(self, name: str) -> pd.DataFrame:
        """Rows of a split in pack order; 'balanced-test' is the flagged subset of test."""
        if name not in VIEWS:
            raise ValueError(f"unknown split {name!r}; one of {', '.join(VIEWS)}")
        if name == "balanced-test":
            return self.index[(self.index["split"] == "test") & self.index["balanced_test"]]
        return self.index[self.index["split"] == name]

    def read_bytes(self, shard: str, offset: int, size: int) -> bytes:
        return self.files.read_bytes(shard, offset, size)

    def samples(self, view: str) -> Iterator[tuple[str, np.ndarray, int]]:
        """(key, uint8 image, label) for every image of a split, in pack order."""
        rows = self.view(view)
        for key, shard, offset, size, label in zip(rows["key"], rows["shard"], rows["offset"],
                                                  rows["size"], rows["label"]):
            yield key, decode_sample(self.files, shard, int(offset), int(size), key), int(label)


def shards_manifest(root: Path) -> dict:
    """The manifest of a finished shards dir, without opening its index (what a check before any work needs)."""
    root = Path(root)
    if not (root / MANIFEST_FILE).exists():
        raise NotAShardsDir(f"{root}: no {MANIFEST_FILE}, so no finished shards here; "
                            f"build them with `python -m ingest build-shards --out {root} ...` (it resumes)")
    return read_manifest(root)


def open_shards(root: Path) -> ShardSet:
    root = Path(root)
    manifest = shards_manifest(root)
    index_sha = check_index_hash(root, manifest)  # labels and splits are the ones built (cheap: one small file)
    index, meta = read_index(root / INDEX_FILE)
    if meta.get("class_names") != manifest["class_names"]:
        raise UsageError(f"{root / INDEX_FILE}: its classes are not those of {root / MANIFEST_FILE}; the files were "
                         f"altered: run `python -m ingest verify {root}`, and rebuild the shards into a new --out")
    files = ShardFiles(root, index["shard"], index["offset"], index["size"], index["key"])
    return ShardSet(root, index, manifest, files, index_sha)
