"""``manifest.json`` of a shards dir: read it, and check that ``index.parquet`` is the one it was built with."""
import json
from pathlib import Path

from .errors import UsageError
from .format import GROUPS, IMAGE_EXT, INDEX_FILE, MANIFEST_FILE, check_shard_names
from .writer import file_sha256

MAX_MANIFEST_BYTES = 64 << 20  # a manifest of a million shards is about 200 MB; ours hold hundreds
MAX_IMAGE_SIZE = 8192  # pixels a side of a packed image
REQUIRED = ("format_version", "dataset", "class_names", "groups", "image", "images", "counts", "shards")


def read_manifest(root: Path) -> dict:
    """The manifest as a dict; a damaged one is a UsageError naming the file."""
    root = Path(root)
    path = root / MANIFEST_FILE
    fix = f"run `python -m ingest verify {root}`, or rebuild the shards into a new --out"
    if path.is_file() and path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UsageError(f"{path}: {path.stat().st_size} bytes, more than a manifest holds "
                         f"({MAX_MANIFEST_BYTES >> 20} MiB at most); {fix}")
    if path.exists() and not path.is_file() and not path.is_dir():
        raise UsageError(f"{path} is not a plain file (a device or FIFO); {fix}")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not readable JSON ({e}); {fix}") from e
    except IsADirectoryError as e:
        raise UsageError(f"{path} is a directory, not a manifest; {fix}") from e
    missing = [k for k in REQUIRED if k not in manifest] if isinstance(manifest, dict) else list(REQUIRED)
    if missing:
        raise UsageError(f"{path}: not a shards manifest (no {', '.join(missing)}); {fix}")
    bad = next((k for k, ok in _FIELDS.items() if k in manifest and not ok(manifest[k], manifest)), None)
    if bad:
        raise UsageError(f"{path}: its {bad!r} is not what build-shards writes; {fix}")
    check_shard_names([s["name"] for s in manifest["shards"]], path, root)
    check_image_settings(manifest["image"], path, fix)
    return manifest


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _names(v, m) -> bool:
    return isinstance(v, list) and v and all(isinstance(n, str) for n in v) and len(set(v)) == len(v)


def _shard(s) -> bool:
    return (isinstance(s, dict) and _count(s.get("samples")) and _count(s.get("bytes"))
            and isinstance(s.get("sha256"), str) and "name" in s)


# each field a manifest may hold, and what build-shards writes into it
_FIELDS = {
    "format_version": lambda v, m: _count(v), "dataset": lambda v, m: isinstance(v, str),
    "class_names": _names,
    "groups": lambda v, m: isinstance(v, list) and len(v) == len(m["class_names"]) and set(v) <= set(GROUPS),
    "images": lambda v, m: isinstance(v, dict) and all(_count(n) for n in v.values()),
    "counts": lambda v, m: isinstance(v, dict) and all(isinstance(c, dict) and all(_count(n) for n in c.values())
                                                       for c in v.values()),
    "shards": lambda v, m: isinstance(v, list) and all(map(_shard, v)),
    "multi_label": lambda v, m: isinstance(v, bool), "synthetic": lambda v, m: isinstance(v, bool),
    "group_rule": lambda v, m: isinstance(v, str), "index_sha256": lambda v, m: isinstance(v, str),
    "skipped": lambda v, m: _count(v),
}


def check_image_settings(image, source: Path, fix: str) -> None:
    """How the images were packed, read from a file, checked as build-shards' flags are: a damaged size
    would reach the decoder and the model's input."""
    def whole(value, low, high) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    if not (isinstance(image, dict) and whole(image.get("size"), 1, MAX_IMAGE_SIZE)
            and image.get("format") in IMAGE_EXT and whole(image.get("quality", 95), 1, 100)):
        raise UsageError(f"{source}: image settings {image!r} are not a build's (size 1..{MAX_IMAGE_SIZE} px, "
                         f"format {' | '.join(IMAGE_EXT)}, quality 1..100); {fix}")


def check_index_hash(root: Path, manifest: dict) -> str:
    """The sha256 of index.parquet; one that is not the manifest's is refused (manifests older than the
    field pass)."""
    want = manifest.get("index_sha256")
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise UsageError(f"{path}: missing; rebuild the shards with `python -m ingest build-shards` into a new --out")
    have = file_sha256(path)
    if want is not None and have != want:
        raise UsageError(f"{path} is not the index this shards dir was built with (its sha256 differs from "
                         f"{MANIFEST_FILE}'s index_sha256), so labels or splits may have changed: "
                         f"run `python -m ingest verify {root}` to see what differs, and rebuild the shards "
                         f"with `python -m ingest build-shards` into a new --out")
    return have
