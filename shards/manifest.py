"""``manifest.json`` of a shards dir: read it, and check that ``index.parquet`` is the one it was built with."""
import json
from pathlib import Path

from .errors import UsageError
from .format import INDEX_FILE, MANIFEST_FILE
from .writer import file_sha256

REQUIRED = ("format_version", "dataset", "class_names", "groups", "image", "images", "counts", "shards")


def read_manifest(root: Path) -> dict:
    """The manifest as a dict; a damaged one is a UsageError naming the file."""
    root = Path(root)
    path = root / MANIFEST_FILE
    fix = f"run `python -m ingest verify {root}`, or rebuild the shards into a new --out"
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not readable JSON ({e}); {fix}") from e
    except IsADirectoryError as e:
        raise UsageError(f"{path} is a directory, not a manifest; {fix}") from e
    missing = [k for k in REQUIRED if k not in manifest] if isinstance(manifest, dict) else list(REQUIRED)
    if missing:
        raise UsageError(f"{path}: not a shards manifest (no {', '.join(missing)}); {fix}")
    return manifest


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
