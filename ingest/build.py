"""build-shards: label files + images -> a shards dir. Deterministic, parallel, resumable.

Every image is converted in a worker process; the main process writes the
shards in plan order, so the bytes do not depend on --workers. A shard appears
under its final name only when complete (its record of members goes to
``.build/`` first), so a killed build, rerun with the same command, skips the
finished shards. ``index.parquet`` and ``manifest.json`` are written last: a
dir without a manifest is not a finished build.
"""
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shards.atomic import make_dir, remove_stale_tmp, write_atomic
from shards.lock import hold
from shards.format import (FORMAT_VERSION, IMAGE_EXT, INDEX_FILE, MANIFEST_FILE, SPLITS, idx_name, label_member,
                           shard_name)
from shards.images import MAX_PIXELS, PERCENTILES, BadImage, convert
from shards.index import label_counts, write_index
from shards.manifest import read_manifest
from shards.progress import Progress
from shards.writer import file_sha256

from . import IngestError
from .adapters import locate_images
from .datasets import WINDOWS, get_dataset
from .synth import MARKER as SYNTH_MARKER

log = logging.getLogger(__name__)
STATE_DIR = ".build"
REPORT_FILE = "ingest_report.json"


@dataclass(frozen=True)
class BuildOptions:
    dataset: str = "nih-cxr-lt"
    size: int = 256
    format: str = "jpeg"
    quality: int = 95
    shard_size: int = 1000
    seed: int = 0
    workers: int = 1
    skip_bad: bool = False
    max_pixels: int = MAX_PIXELS
    # the releases' options (None: the dataset's own; left out of params, so older builds keep their state)
    window: str | None = None          # how 16-bit images become 8-bit: sbit | percentile (shards.images)
    val_fraction: float | None = None  # of the training patients, when the release has no val split
    test_fraction: float | None = None
    split_seed: int | None = None
    spec: str | None = None            # --dataset csv: the spec (hashed with the label files, not a param)

    def params(self) -> dict:
        """What fixes the output bytes (not --workers, --skip-bad, --max-pixels: they only refuse or skip)."""
        p = {k: v for k, v in asdict(self).items() if v is not None}
        del p["workers"], p["skip_bad"], p["max_pixels"]
        p.pop("spec", None)
        p.pop("window", None)
        if self.window16 != "sbit":  # the window used, whether asked for or the dataset's
            p["window16"] = self.window16
        return {**p, "format_version": FORMAT_VERSION}

    def source(self):
        """The dataset these options pack (``ingest.datasets.get_dataset``)."""
        return get_dataset(self.dataset, spec=self.spec, val_fraction=self.val_fraction,
                           test_fraction=self.test_fraction, split_seed=self.split_seed)

    @property
    def window16(self) -> str:
        return self.window or WINDOWS.get(self.dataset, "sbit")


def plan_shards(records: pd.DataFrame, shard_size: int, seed: int) -> pd.DataFrame:
    """Records in pack order with their shard: each split sorted by id, shuffled with (seed, split)."""
    parts = []
    for i, split in enumerate(SPLITS):
        rows = records[records["split"] == split].sort_values("image_id", kind="stable")
        rows = rows.iloc[np.random.default_rng([seed, i]).permutation(len(rows))].copy()
        rows["shard"] = [shard_name(split, k // shard_size) for k in range(len(rows))]
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def plan_digest(plan: pd.DataFrame) -> str:
    lines = "\n".join(f"{s} {k} {l} {''.join(map(str, ls))}"
                      for s, k, l, ls in zip(plan["shard"], plan["key"], plan["label"], plan["labels"]))
    return hashlib.sha256(lines.encode()).hexdigest()


def _convert_job(job):
    path, size, fmt, quality, max_pixels, window = job
    try:
        return convert(path, size, fmt, quality, max_pixels, window), None
    except BadImage as e:
        return None, str(e)


@contextmanager
def _mapper(workers: int):
    if workers <= 1:
        yield map
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        yield lambda fn, jobs: pool.imap(fn, jobs, chunksize=4)


def _space_needed(n_images: int, opts: BuildOptions) -> int:
    per_image = opts.size * opts.size * (0.6 if opts.format == "jpeg" else 1.1) + 3 * 512
    return int(n_images * per_image * 1.1) + (16 << 20)


def _check_disk(out: Path, n_images: int, opts: BuildOptions) -> None:
    need, free = _space_needed(n_images, opts), shutil.disk_usage(out).free
    if free < need:
        raise IngestError(f"{out}: about {need / 1e9:.2f} GB needed for {n_images} images at {opts.size} px "
                          f"{opts.format}, {free / 1e9:.2f} GB free; free some space or choose an --out on a "
                          f"larger disk")


def _make_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise IngestError(f"--out {out} is a file; give a folder (a new one, or one build-shards is filling)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IngestError(f"--out {out}: cannot create it ({e.strerror}); choose a writable --out") from e
    if not os.access(out, os.W_OK):
        raise IngestError(f"--out {out} is not writable (a read-only file system, or no permission); "
                          f"choose a writable --out")


def _write_failed(e: OSError, out: Path, n_images: int, opts: BuildOptions) -> IngestError | None:
    """The one-line error of a failed write that is the disk's fault, not the program's (None: a bug)."""
    where = e.filename or out
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        need, free = _space_needed(n_images, opts), shutil.disk_usage(out).free
        return IngestError(f"{where}: disk full ({e.strerror}); this build needs about {need / 1e9:.2f} GB for "
                           f"{n_images} images, {free / 1e9:.2f} GB are free. Free some space and rerun the same "
                           f"command (finished shards are kept), or use an --out on a larger disk")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return IngestError(f"{where}: cannot write ({e.strerror}); choose a writable --out")
    return None


def _start_state(out: Path, state: dict, shards: list[str]) -> Path:
    """.build/state.json holds what is being built; a rerun must ask for the same."""
    state_dir = out / STATE_DIR
    make_dir(state_dir)
    # what a killed build of these shards left; a user's own files stay
    remove_stale_tmp(out, [*shards, *map(idx_name, shards), INDEX_FILE, MANIFEST_FILE, REPORT_FILE])
    remove_stale_tmp(state_dir, ["state.json", *(f"{s}.json" for s in shards)])
    path = state_dir / "state.json"
    if path.exists() and json.loads(path.read_text()) != state:
        raise IngestError(f"{out} holds an unfinished build with other settings or label files; rerun it with "
                          f"the same command to finish it, or use a new --out (or delete {out})")
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True).encode())
    return state_dir


def _write_shards(todo: pd.DataFrame, out: Path, state_dir: Path, opts: BuildOptions, multi_label: bool) -> None:
    from shards.writer import ShardWriter

    ext = IMAGE_EXT[opts.format]
    jobs = ((str(p), opts.size, opts.format, opts.quality, opts.max_pixels, opts.window16) for p in todo["source"])
    progress = Progress(len(todo), "build-shards")
    with _mapper(opts.workers) as mapper:
        results = mapper(_convert_job, jobs)
        for shard, rows in todo.groupby("shard", sort=False):
            writer, members, bad = ShardWriter(out / shard), [], []
            try:
                for row in rows.itertuples():
                    data, reason = next(results)
                    progress.update()
                    if data is None:
                        if not opts.skip_bad:
                            raise IngestError(f"{row.source}: {reason} (id {row.image_id}, {row.split} split). "
                                              f"Replace the file, or rerun with --skip-bad to leave it out "
                                              f"(it is then listed in {REPORT_FILE})")
                        bad.append({"image_id": row.image_id, "path": str(row.source), "reason": reason})
                        continue
                    placed = writer.add(row.key, {ext: data, **dict([label_member(row.label, row.labels,
                                                                                  multi_label)])})
                    members.append([row.key, *placed[ext], hashlib.sha256(data).hexdigest()])
                info = writer.finish()
            except BaseException as e:
                writer.abort()
                if isinstance(e, OSError) and e.filename is None:  # a failed write() names no file
                    e.filename = str(out / shard)
                raise
            record = {"shard": info, "members": members, "bad": bad}
            write_atomic(state_dir / f"{shard}.json", json.dumps(record).encode())
            writer.commit()
    progress.close()


def _finished(out: Path, state_dir: Path, shard: str) -> bool:
    return (out / shard).exists() and (state_dir / f"{shard}.json").exists()


def _manifest(opts, dataset, facts, index, shard_infos, bad, state, **extra) -> dict:
    names = dataset.class_names
    views = {s: index[index["split"] == s] for s in SPLITS}
    views["balanced-test"] = index[index["balanced_test"]]
    counts = {v: dict(zip(names, label_counts(rows, len(names)).tolist())) for v, rows in views.items()}
    image = {"size": opts.size, "format": opts.format, "quality": opts.quality, "ext": IMAGE_EXT[opts.format]}
    if opts.window16 != "sbit":  # recorded where it is not the rule of every earlier build
        image["window16"] = opts.window16
        image["window16_percentiles"] = list(PERCENTILES)
    return {
        "format_version": FORMAT_VERSION, "dataset": dataset.name, "class_names": names,
        "groups": dataset.groups(index, facts),
        "group_rule": facts.get("group_rule", dataset.group_rule),
        "multi_label": not dataset.single_label,
        "image": image,
        "images": {v: len(rows) for v, rows in views.items()},
        "counts": counts, "skipped": len(bad), "shards": shard_infos, "build": state,
        **{k: v for k, v in facts.items() if k != "group_rule"}, **extra,
    }


def is_synthetic(images: Path) -> bool:
    """Pixels from ``python -m ingest synth``: its marker sits in --images or up to two folders above it."""
    images = Path(images).resolve()
    return any((d / SYNTH_MARKER).is_file() for d in [images, *images.parents][:3])


def _existing(out: Path, state: dict) -> dict | None:
    """The manifest of a finished build of the same state; None when there is none yet."""
    if not (out / MANIFEST_FILE).exists():
        return None
    manifest = read_manifest(out)
    if manifest.get("build") == state:
        log.info("%s is complete and up to date: nothing to do", out)
        return manifest
    raise IngestError(f"{out} already holds shards built with other settings or label files; "
                      f"use a new --out or delete {out}")


def build_shards(images: Path, labels: Path, out: Path, opts: BuildOptions) -> dict:
    """Build (or finish building) a shards dir; returns its manifest."""
    out = Path(out)
    dataset = opts.source()
    records, label_hashes, facts = dataset.read(Path(opts.spec).parent if opts.spec else labels)
    plan = plan_shards(records, opts.shard_size, opts.seed)
    plan["source"] = locate_images(dataset, images, plan)
    state = {"params": opts.params(), "label_files": label_hashes, "plan": plan_digest(plan)}
    _make_out(out)
    with hold(out, "ingest build-shards"):  # a second build would delete this one's live temp files
        return _build(out, plan, state, (dataset, facts), images, opts)


def _build(out: Path, plan: pd.DataFrame, state: dict, source: tuple, images: Path, opts: BuildOptions) -> dict:
    """``source``: (the dataset, its facts from reading the label files)."""
    if (manifest := _existing(out, state)) is not None:
        return manifest
    shards, todo = list(dict.fromkeys(plan["shard"])), plan
    try:
        state_dir = _start_state(out, state, shards)
        todo = plan[~plan["shard"].isin({s for s in shards if _finished(out, state_dir, s)})]
        log.info("%d images in %d shards; %d shards to write", len(plan), len(shards), todo["shard"].nunique())
        _check_disk(out, len(todo), opts)
        _write_shards(todo, out, state_dir, opts, not source[0].single_label)
        manifest = _finish(plan, shards, out, state_dir, source, opts, state,
                           synthetic=is_synthetic(images))
    except OSError as e:
        refused = _write_failed(e, out, len(todo), opts)
        if refused is None:
            raise
        raise refused from e
    shutil.rmtree(state_dir)
    return manifest


def _finish(plan, shards, out, state_dir, source, opts, state, synthetic: bool) -> dict:
    """index.parquet, ingest_report.json and, last, manifest.json from the finished shards' records."""
    infos, placed, bad = [], {}, []
    for shard in shards:
        record = json.loads((state_dir / f"{shard}.json").read_text())
        infos.append({**record["shard"], "split": shard.split("-")[0]})
        placed.update({m[0]: (shard, *m[1:]) for m in record["members"]})
        bad += record["bad"]
    index = plan[plan["key"].isin(placed)].copy()
    where = pd.DataFrame([placed[k] for k in index["key"]], columns=["shard", "offset", "size", "sha256"],
                         index=index.index)
    index[where.columns] = where
    dataset, facts = source
    write_index(index, out / INDEX_FILE, dataset.name, dataset.class_names)
    write_atomic(out / REPORT_FILE, json.dumps({"skipped": bad}, indent=1).encode())
    if opts.spec:  # the spec travels with the shards it made (its sha256 is in the manifest)
        write_atomic(out / Path(opts.spec).name, Path(opts.spec).read_bytes())
    manifest = _manifest(opts, dataset, facts, index, infos, bad, state, synthetic=synthetic,
                         index_sha256=file_sha256(out / INDEX_FILE))
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=1).encode())
    return manifest
