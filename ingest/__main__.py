"""python -m ingest synth | build-shards | verify | stats | bench"""
import argparse
import logging
import os
import sys
from pathlib import Path

from shards.format import HEAD_ABOVE, TAIL_BELOW
from shards.reader import NotAShardsDir, open_shards

from . import IngestError
from .adapters import ADAPTERS
from .bench import bench, table
from .build import BuildOptions, build_shards
from .stats import describe
from .synth import synth
from .verify import verify


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="write a synthetic dataset in the exact NIH layout")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--scale", type=float, default=1.0, help="fraction of every split to keep (default 1)")
    s.add_argument("--image-size", type=int, default=1024)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=os.cpu_count())
    b = sub.add_parser("build-shards", help="pack images + label files into resized shards")
    b.add_argument("--images", type=Path, required=True, help="image root (searched recursively for NIH)")
    b.add_argument("--labels", type=Path, required=True, help="folder with the dataset's label CSVs")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--dataset", default="nih-cxr-lt", choices=list(ADAPTERS))
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--format", default="jpeg", choices=["jpeg", "png"])
    b.add_argument("--quality", type=int, default=95)
    b.add_argument("--shard-size", type=int, default=1000)
    b.add_argument("--seed", type=int, default=0, help="pack-time shuffle")
    b.add_argument("--workers", type=int, default=os.cpu_count())
    b.add_argument("--skip-bad", action="store_true",
                   help="leave undecodable images out (listed in ingest_report.json)")
    v = sub.add_parser("verify", help="re-hash a shards dir against its manifest and index")
    v.add_argument("dir", type=Path)
    st = sub.add_parser("stats", help="per-split, per-class counts and groups")
    st.add_argument("dir", type=Path)
    st.add_argument("--head-above", type=int, default=HEAD_ABOVE)
    st.add_argument("--tail-below", type=int, default=TAIL_BELOW)
    be = sub.add_parser("bench", help="build-shards images/s per core against the decode + resize floor")
    be.add_argument("--images", type=Path, required=True)
    be.add_argument("--labels", type=Path, required=True)
    be.add_argument("--size", type=int, default=256)
    be.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    be.add_argument("--floor-images", type=int, default=500)
    be.add_argument("--dataset", default="nih-cxr-lt", choices=list(ADAPTERS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    a = parse(argv)
    try:
        if a.cmd == "synth":
            info = synth(a.out, a.scale, a.image_size, a.seed, a.workers)
            print(f"wrote {info['images']} images ({a.image_size} px) and labels to {a.out}: "
                  f"single-label {info['single_label']}, multi-label {info['multi_label']}")
        elif a.cmd == "build-shards":
            opts = BuildOptions(a.dataset, a.size, a.format, a.quality, a.shard_size, a.seed, a.workers, a.skip_bad)
            m = build_shards(a.images, a.labels, a.out, opts)
            print(f"{a.out}: {sum(s['samples'] for s in m['shards'])} images in {len(m['shards'])} shards "
                  f"({sum(s['bytes'] for s in m['shards']) / 1e6:.1f} MB), {m['skipped']} skipped")
        elif a.cmd == "verify":
            problems = verify(a.dir)
            for line in problems:
                print(f"PROBLEM {line}")
            print(f"{a.dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        elif a.cmd == "bench":
            rows = bench(a.images, a.labels, a.size, [int(w) for w in a.workers.split(",")], a.floor_images, a.dataset)
            print(table(rows))
        elif a.cmd == "stats":
            print(describe(open_shards(a.dir), a.head_above, a.tail_below))
    except (IngestError, NotAShardsDir) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
