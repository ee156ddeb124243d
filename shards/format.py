"""Constants and naming rules of the shard format (version 1)."""
import re
from pathlib import Path

from .errors import UsageError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
INDEX_FILE = "index.parquet"
MANIFEST_FILE = "manifest.json"
IMAGE_EXT = {"jpeg": "jpg", "png": "png"}
LABEL_EXT = "cls"
MULTI_LABEL_EXT = "labels"  # multi-label shards: the multi-hot row where a single-label sample has its .cls
TAR_BLOCK = 512

# DALI's webdataset reader takes everything after the first dot of a member
# name as its extension, so a key must never contain a dot.
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# Head / medium / tail as the benchmark defines them (FACTS.md): more than
# 1000 training images, 100 to 1000, fewer than 100.
HEAD_ABOVE = 1000
TAIL_BELOW = 100
GROUPS = ("head", "medium", "tail")


def label_member(label: int, labels, multi_label: bool) -> tuple[str, bytes]:
    """A sample's label member: ``cls``, the class index as text; multi-label, ``labels``, the multi-hot row as
    "0,1,0,..." in class order (under 512 bytes up to 256 classes, so the image offsets are those of a ``cls``)."""
    if multi_label:
        return MULTI_LABEL_EXT, ",".join(str(int(v)) for v in labels).encode()
    return LABEL_EXT, str(label).encode()


def key_for(image_id: str) -> str:
    """The shard key of an image id: the file name without its extension."""
    stem = image_id.rsplit("/", 1)[-1]
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    if not _KEY.match(stem):
        raise ValueError(f"image id {image_id!r} gives key {stem!r}: keys may hold only letters, digits, '_' and '-'")
    return stem


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


_SHARD = re.compile(rf"^({'|'.join(SPLITS)})-[0-9]{{6}}\.tar$")  # what shard_name() gives


def check_shard_names(names, source: Path, root: Path) -> None:
    """Shard names read from ``source`` (manifest.json, index.parquet) name files in ``root`` itself: a name
    such as ../../dev/zero or /etc/x, from a shards dir someone else made, would read a file outside it."""
    for name in names:
        if not isinstance(name, str) or not _SHARD.match(name):
            raise UsageError(f"{source}: shard {name!r} is not a shard file of this dir (SPLIT-NNNNNN.tar); the "
                             f"file was altered: rebuild the shards with `python -m ingest build-shards` into a "
                             f"new --out, or get {root} again from its source")


def idx_name(shard: str) -> str:
    return shard[: -len(".tar")] + ".idx"


def group_of(count: int, head_above: int = HEAD_ABOVE, tail_below: int = TAIL_BELOW) -> str:
    if count > head_above:
        return "head"
    if count < tail_below:
        return "tail"
    return "medium"
