"""verify: re-hash every shard and member against the manifest and index; check the .idx files, and the
labels, splits, counts, class names and groups against the tars, the manifest and the benchmark's rule."""
import hashlib
from pathlib import Path

import numpy as np

from shards.errors import UsageError
from shards.format import IMAGE_EXT, INDEX_FILE, LABEL_EXT, MANIFEST_FILE, group_of, idx_name, label_member
from shards.index import class_counts, label_counts, read_index
from shards.manifest import read_manifest
from shards.writer import file_sha256, idx_text, read_members

from .adapters import ADAPTERS


def _check_member(name: str, data: bytes, sample, row, want_label: bytes) -> list[str]:
    (img_name, off, size), (cls_name, cls_off, cls_size) = sample
    problems = []
    if (off, size) != (row.offset, row.size):
        problems.append(f"{name}: {img_name} at ({off}, {size}), index says ({row.offset}, {row.size})")
    if hashlib.sha256(data[off:off + size]).hexdigest() != row.sha256:
        problems.append(f"{name}: {img_name} sha256 differs from the index")
    cls = data[cls_off:cls_off + cls_size]
    if cls != want_label:
        problems.append(f"{name}: {cls_name} holds label {cls.decode(errors='replace')}, index.parquet says "
                        f"{want_label.decode()}")
    return problems


def _check_shard(root: Path, info: dict, rows, ext: str, multi_label: bool) -> list[str]:
    name, path = info["name"], root / info["name"]
    if not path.exists():
        return [f"{name}: missing"]
    if not path.is_file():  # a link to /dev/zero or a FIFO would be read forever
        return [f"{name}: not a plain file (a device, FIFO or folder)"]
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
        label_ext, label = label_member(row.label, row.labels, multi_label)
        names = [m[0] for m in sample]
        if multi_label and names == [f"{row.key}.{ext}", f"{row.key}.{LABEL_EXT}"]:
            label_ext, label = LABEL_EXT, b"-1"  # built before multi-label shards stored their labels
        want_names = [f"{row.key}.{ext}", f"{row.key}.{label_ext}"]
        if names != want_names:
            problems.append(f"{name}: members {names}, index expects {want_names}")
            continue
        problems += _check_member(name, data, sample, row, label)
    idx = path.with_name(idx_name(name))
    want_idx = idx_text([[(m[0].split(".", 1)[1], m[1], m[2], m[0]) for m in s] for s in samples])
    if not idx.exists():
        problems.append(f"{idx.name}: missing")
    elif idx.read_text() != want_idx:
        problems.append(f"{idx.name}: does not match its tar (regenerate it)")
    return problems


def _first(rows, what: str) -> str:
    r = rows.iloc[0]
    return f"{len(rows)} rows {what} (first: {r['key']}, split {r['split']}, {r['shard']})"


def _check_rows(index, manifest: dict) -> list[str]:
    """Each row's split against its shard's, balanced-test inside test, label against multi-hot labels."""
    problems = []
    wrong_split = index[index["split"] != index["shard"].str.split("-").str[0]]
    if len(wrong_split):
        what = "whose split is not their shard's"
        problems.append(f"{INDEX_FILE}: {_first(wrong_split, what)}")
    outside = index[index["balanced_test"] & (index["split"] != "test")]
    if len(outside):
        problems.append(f"{INDEX_FILE}: {_first(outside, 'flagged balanced-test outside the test split')}")
    labels = np.stack(index["labels"].to_numpy()) if len(index) else np.zeros((0, 1))
    if manifest.get("multi_label"):
        bad = (index["label"].to_numpy() != -1) | ~np.isin(labels, (0, 1)).all(axis=1)
    else:
        bad = (labels.sum(axis=1) != 1) | (labels.argmax(axis=1) != index["label"].to_numpy())
    if bad.any():
        problems.append(f"{INDEX_FILE}: {_first(index[bad], 'whose label and multi-hot labels disagree')}")
    patients = index.groupby("patient_id")["split"].nunique()
    if (patients > 1).any():
        problems.append(f"{INDEX_FILE}: {(patients > 1).sum()} patients in more than one split "
                        f"(first: {patients[patients > 1].index[0]})")
    return problems


def _check_counts(index, manifest: dict) -> list[str]:
    """Images and per-class counts of every split against the manifest's."""
    names, problems = manifest["class_names"], []
    views = {s: index[index["split"] == s] for s in ("train", "val", "test")}
    views["balanced-test"] = index[index["balanced_test"]]
    for view, rows in views.items():
        if len(rows) != manifest["images"].get(view):
            problems.append(f"{INDEX_FILE}: {len(rows)} {view} images, manifest says {manifest['images'].get(view)}")
        have = dict(zip(names, label_counts(rows, len(names)).tolist()))
        want = manifest["counts"].get(view, {})
        differ = [f"{c} {have[c]} (manifest {want.get(c)})" for c in names if have[c] != want.get(c)]
        if differ:
            problems.append(f"{INDEX_FILE}: {view} class counts differ from the manifest: {', '.join(differ)}")
    return problems


def _check_classes(index, meta: dict, manifest: dict) -> list[str]:
    """Class names against the index and the dataset; groups against the benchmark's grouping rule."""
    names, problems = manifest["class_names"], []
    if meta.get("class_names") != names:
        problems.append(f"{MANIFEST_FILE}: class_names differ from {INDEX_FILE}'s {meta.get('class_names')}")
    if meta.get("dataset") != manifest["dataset"]:
        problems.append(f"{MANIFEST_FILE}: dataset {manifest['dataset']!r}, {INDEX_FILE} says {meta.get('dataset')!r}")
    adapter = ADAPTERS.get(manifest["dataset"])
    if adapter is not None and adapter.class_names != names:
        problems.append(f"{MANIFEST_FILE}: class_names are not {adapter.name}'s {adapter.class_names}")
    if adapter is not None and adapter.class_names == meta.get("class_names"):
        want = adapter.groups(class_counts(index, len(adapter.class_names), "train"))
        rule = "published training counts" if adapter.published_counts else "training counts"
        classes = adapter.class_names
    else:  # a release or csv: the rule over the counts of its training rows (train, and the splits made of them)
        splits = manifest.get("group_splits", ["train"])
        want = [group_of(int(n)) for n in sum(class_counts(index, len(names), s) for s in splits)]
        rule, classes = f"training counts of {'+'.join(splits)}", names
    got = list(manifest["groups"])
    if len(got) != len(want):
        return problems + [f"{MANIFEST_FILE}: {len(got)} groups for {len(want)} classes"]
    differ = [f"{c} {g} (rule: {w})" for c, g, w in zip(classes, got, want) if g != w]
    if differ:
        problems.append(f"{MANIFEST_FILE}: groups differ from the rule (head > 1000, medium 100-1000, tail < 100 "
                        f"{rule}): {', '.join(differ)}")
    return problems


def verify(root: Path) -> list[str]:
    """Every problem found; an empty list means the shards dir is intact."""
    root = Path(root)
    if not (root / MANIFEST_FILE).exists():
        return [f"{root}: no {MANIFEST_FILE} (an unfinished build? rerun build-shards with the same command)"]
    try:
        manifest = read_manifest(root)
    except UsageError as e:
        return [str(e)]
    problems, index_path, want = [], root / INDEX_FILE, manifest.get("index_sha256")  # None: an older build
    if want is not None and index_path.is_file() and file_sha256(index_path) != want:
        problems.append(f"{INDEX_FILE}: sha256 differs from the manifest's index_sha256")
    try:
        index, meta = read_index(index_path)
    except UsageError as e:
        return problems + [str(e)]
    ext = IMAGE_EXT[manifest["image"]["format"]]
    listed = {s["name"] for s in manifest["shards"]}
    strays = sorted(set(index["shard"]) - listed)
    if strays:
        problems.append(f"{INDEX_FILE}: rows point to shards the manifest does not list: {strays}")
    for info in manifest["shards"]:
        problems += _check_shard(root, info, index[index["shard"] == info["name"]], ext,
                                 bool(manifest.get("multi_label")))
    return problems + _check_rows(index, manifest) + _check_counts(index, manifest) + \
        _check_classes(index, meta, manifest)
