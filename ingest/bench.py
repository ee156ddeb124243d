"""bench: build-shards throughput against the bare decode + resize floor, on the same images.

The floor is what no ingest can beat on one core: decode each source PNG and
resize it (no encode, no hashing, no tar). build-shards adds the JPEG encode,
hashing and writing; its images/s per core should stay within 80% of the floor.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

from shards.images import load_grey, resize_area

from .build import BuildOptions, build_shards


def decode_resize_floor(paths: list[Path], size: int) -> float:
    """images/s of decode + resize alone, one core."""
    start = time.perf_counter()
    for p in paths:
        resize_area(load_grey(p), size)
    return len(paths) / (time.perf_counter() - start)


def bench(images: Path, labels: Path, size: int, workers_list: list[int], floor_n: int,
          dataset: str = "nih-cxr-lt") -> list[dict]:
    paths = sorted(Path(images).rglob("*.png"))
    rows = [{"what": f"decode + resize floor ({min(floor_n, len(paths))} images)", "workers": 1,
             "img_s": decode_resize_floor(paths[:floor_n], size)}]
    src_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1e3
    for workers in workers_list:
        out = Path(tempfile.mkdtemp(prefix="bench-shards-"))
        try:
            start = time.perf_counter()
            m = build_shards(images, labels, out / "s", BuildOptions(dataset=dataset, size=size, workers=workers))
            seconds = time.perf_counter() - start
            n = sum(s["samples"] for s in m["shards"])
            rows.append({"what": f"build-shards ({n} images, {seconds:.1f} s)", "workers": workers,
                         "img_s": n / seconds, "out_kb": sum(s["bytes"] for s in m["shards"]) / n / 1e3})
        finally:
            shutil.rmtree(out)
    for r in rows:
        r["per_core"] = r["img_s"] / min(r["workers"], os.cpu_count())
        r["of_floor"] = r["per_core"] / rows[0]["img_s"]
        r["src_kb"] = src_kb
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| what | workers | images/s | per core | of floor | source PNG KB | shard KB/image |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        out_kb = f"{r['out_kb']:.1f}" if "out_kb" in r else "-"
        lines.append(f"| {r['what']} | {r['workers']} | {r['img_s']:.1f} | {r['per_core']:.1f} | "
                     f"{100 * r['of_floor']:.0f}% | {r['src_kb']:.0f} | {out_kb} |")
    return "\n".join(lines)
