"""verify: re-hash every shard and member against the manifest and index; check the .idx files."""
import hashlib
import json
from pathlib import Path

from shards.format import IMAGE_EXT, INDEX_FILE, LABEL_EXT, MANIFEST_FILE, idx_name
from shards.index import read_index
from shards.writer import file_sha256, idx_text, read_members


def _check_shard(root: Path, info: dict, rows, ext: str) -> list[str]:
    name, path = info["name"], root / info["name"]
    if not path.exists():
        return [f"{name}: missing"]
    problems = []
    if path.stat().st_size != info["bytes"]:
        problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {info['bytes']}")
    if file_sha256(path) != info["sha256"]:
        problems.append(f"{name}: sha256 differs from the manifest")
    try:
        members = read_members(path)
    except Exception as e:  # a damaged tar: report it with the rest
        return problems + [f"{name}: unreadable tar ({e})"]
    samples = [members[i:i + 2] for i in range(0, len(members), 2)]
    if len(samples) != info["samples"] or len(samples) != len(rows):
        problems.append(f"{name}: {len(samples)} samples, manifest {info['samples']}, index {len(rows)}")
    data = path.read_bytes()
    for sample, row in zip(samples, rows.itertuples()):
        (img_name, off, size), *_ = sample
        want_names = [f"{row.key}.{ext}", f"{row.key}.{LABEL_EXT}"]
        if [m[0] for m in sample] != want_names:
            problems.append(f"{name}: members {[m[0] for m in sample]}, index expects {want_names}")
            continue
        if (off, size) != (row.offset, row.size):
            problems.append(f"{name}: {img_name} at ({off}, {size}), index says ({row.offset}, {row.size})")
        if hashlib.sha256(data[off:off + size]).hexdigest() != row.sha256:
            problems.append(f"{name}: {img_name} sha256 differs from the index")
    idx = path.with_name(idx_name(name))
    want_idx = idx_text([[(m[0].split(".", 1)[1], m[1], m[2], m[0]) for m in s] for s in samples])
    if not idx.exists():
        problems.append(f"{idx.name}: missing")
    elif idx.read_text() != want_idx:
        problems.append(f"{idx.name}: does not match its tar (regenerate it)")
    return problems


def verify(root: Path) -> list[str]:
    """Every problem found; an empty list means the shards dir is intact."""
    root = Path(root)
    if not (root / MANIFEST_FILE).exists():
        return [f"{root}: no {MANIFEST_FILE} (an unfinished build? rerun build-shards with the same command)"]
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    try:
        index, _ = read_index(root / INDEX_FILE)
    except Exception as e:
        return [f"{INDEX_FILE}: unreadable ({e})"]
    ext = IMAGE_EXT[manifest["image"]["format"]]
    problems = []
    listed = {s["name"] for s in manifest["shards"]}
    strays = sorted(set(index["shard"]) - listed)
    if strays:
        problems.append(f"{INDEX_FILE}: rows point to shards the manifest does not list: {strays}")
    for info in manifest["shards"]:
        problems += _check_shard(root, info, index[index["shard"] == info["name"]], ext)
    for split, n in manifest["images"].items():
        have = int(index["balanced_test"].sum()) if split == "balanced-test" else int((index["split"] == split).sum())
        if have != n:
            problems.append(f"{INDEX_FILE}: {have} {split} images, manifest says {n}")
    return problems
