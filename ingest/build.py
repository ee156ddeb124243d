"""build-shards: label files + images -> a shards dir. Deterministic, parallel, resumable.

Every image is converted in a worker process; the main process writes the
shards in plan order, so the bytes do not depend on --workers. A shard appears
under its final name only when complete (its record of members goes to
``.build/`` first), so a killed build, rerun with the same command, skips the
finished shards. ``index.parquet`` and ``manifest.json`` are written last: a
dir without a manifest is not a finished build.
"""
import hashlib
import json
import logging
import multiprocessing
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shards.atomic import write_atomic
from shards.format import FORMAT_VERSION, IMAGE_EXT, INDEX_FILE, LABEL_EXT, MANIFEST_FILE, SPLITS, shard_name
from shards.index import class_counts, label_counts, write_index
from shards.progress import Progress

from . import IngestError
from .adapters import get_adapter, locate_images, read_labels
from .images import BadImage, convert

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

    def params(self) -> dict:
        """What fixes the output bytes (not --workers, not --skip-bad)."""
        p = asdict(self)
        del p["workers"], p["skip_bad"]
        return {**p, "format_version": FORMAT_VERSION}


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
    path, size, fmt, quality = job
    try:
        return convert(path, size, fmt, quality), None
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


def _check_disk(out: Path, n_images: int, opts: BuildOptions) -> None:
    per_image = opts.size * opts.size * (0.6 if opts.format == "jpeg" else 1.1) + 3 * 512
    need = int(n_images * per_image * 1.1) + (16 << 20)
    free = shutil.disk_usage(out).free
    if free < need:
        raise IngestError(f"{out}: about {need / 1e9:.2f} GB needed for {n_images} images at {opts.size} px "
                          f"{opts.format}, {free / 1e9:.2f} GB free; free some space or choose an --out on a "
                          f"larger disk")


def _start_state(out: Path, state: dict) -> Path:
    """.build/state.json holds what is being built; a rerun must ask for the same."""
    state_dir = out / STATE_DIR
    state_dir.mkdir(exist_ok=True)
    for stale in out.glob(".*.tmp*"):
        stale.unlink()
    path = state_dir / "state.json"
    if path.exists() and json.loads(path.read_text()) != state:
        raise IngestError(f"{out} holds an unfinished build with other settings or label files; rerun it with "
                          f"the same command to finish it, or use a new --out (or delete {out})")
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True).encode())
    return state_dir


def _write_shards(todo: pd.DataFrame, out: Path, state_dir: Path, opts: BuildOptions) -> None:
    from shards.writer import ShardWriter

    ext = IMAGE_EXT[opts.format]
    jobs = ((str(p), opts.size, opts.format, opts.quality) for p in todo["source"])
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
                    placed = writer.add(row.key, {ext: data, LABEL_EXT: str(row.label).encode()})
                    members.append([row.key, *placed[ext], hashlib.sha256(data).hexdigest()])
                info = writer.finish()
            except BaseException:
                writer.abort()
                raise
            record = {"shard": info, "members": members, "bad": bad}
            write_atomic(state_dir / f"{shard}.json", json.dumps(record).encode())
            writer.commit()
    progress.close()


def _finished(out: Path, state_dir: Path, shard: str) -> bool:
    return (out / shard).exists() and (state_dir / f"{shard}.json").exists()


def _manifest(opts, adapter, index, shard_infos, bad, state) -> dict:
    names = adapter.class_names
    views = {s: index[index["split"] == s] for s in SPLITS}
    views["balanced-test"] = index[index["balanced_test"]]
    counts = {v: dict(zip(names, label_counts(rows, len(names)).tolist())) for v, rows in views.items()}
    return {
        "format_version": FORMAT_VERSION, "dataset": adapter.name, "class_names": names,
        "groups": adapter.groups(class_counts(index, len(names), "train")),
        "group_rule": "published training counts" if adapter.published_counts else "training counts",
        "multi_label": not adapter.single_label,
        "image": {"size": opts.size, "format": opts.format, "quality": opts.quality, "ext": IMAGE_EXT[opts.format]},
        "images": {v: len(rows) for v, rows in views.items()},
        "counts": counts, "skipped": len(bad), "shards": shard_infos, "build": state,
    }


def build_shards(images: Path, labels: Path, out: Path, opts: BuildOptions) -> dict:
    """Build (or finish building) a shards dir; returns its manifest."""
    out = Path(out)
    adapter = get_adapter(opts.dataset)
    records, label_hashes = read_labels(adapter, labels)
    plan = plan_shards(records, opts.shard_size, opts.seed)
    plan["source"] = locate_images(adapter, images, plan)
    state = {"params": opts.params(), "label_files": label_hashes, "plan": plan_digest(plan)}
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST_FILE).exists():
        manifest = json.loads((out / MANIFEST_FILE).read_text())
        if manifest.get("build") == state:
            log.info("%s is complete and up to date: nothing to do", out)
            return manifest
        raise IngestError(f"{out} already holds shards built with other settings or label files; "
                          f"use a new --out or delete {out}")
    state_dir = _start_state(out, state)
    shards = list(dict.fromkeys(plan["shard"]))
    todo = plan[~plan["shard"].isin({s for s in shards if _finished(out, state_dir, s)})]
    log.info("%d images in %d shards; %d shards to write", len(plan), len(shards), todo["shard"].nunique())
    _check_disk(out, len(todo), opts)
    _write_shards(todo, out, state_dir, opts)

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
    write_index(index, out / INDEX_FILE, adapter.name, adapter.class_names)
    write_atomic(out / REPORT_FILE, json.dumps({"skipped": bad}, indent=1).encode())
    manifest = _manifest(opts, adapter, index, infos, bad, state)
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=1).encode())
    shutil.rmtree(state_dir)
    return manifest
