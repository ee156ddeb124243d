"""python -m ingest synth | build-shards | verify | stats | bench"""
import argparse
import logging
import os
import sys
from pathlib import Path

from shards.errors import UsageError
from shards.flags import int_at_least
from shards.format import HEAD_ABOVE, TAIL_BELOW
from shards.images import MAX_PIXELS, WINDOWS
from shards.reader import open_shards

from .datasets import NAMES
from .bench import bench, table
from .build import BuildOptions, build_shards
from .stats import describe
from .synth import synth
from .synth_release import REAL_TRAIN, synth_release
from .verify import verify


def quality(text: str) -> int:
    value = int_at_least(1)(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"{value}: JPEG quality goes from 1 to 100")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return value


def worker_counts(text: str) -> list[int]:
    return [int_at_least(1)(w) for w in text.split(",")]


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown; a required flag says so instead of "(default: None)"."""

    def _get_help_string(self, action):
        if action.required:
            return f"{action.help} (required)"
        return action.help if action.default is None else super()._get_help_string(action)


def _sub(sub, name: str, help: str):
    return sub.add_parser(name, help=help, description=help, formatter_class=Help)


def share(text: str) -> float:
    value = fraction(text) if text.strip() not in ("0", "0.0") else 0.0
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{value}: a share of the training patients must be below 1")
    return value


def _images_and_labels(p, dataset_help: str) -> None:
    p.add_argument("--images", type=Path, required=True, help="image root (searched recursively for NIH)")
    p.add_argument("--labels", type=Path, help="folder with the dataset's label CSVs (required, except with "
                   "--dataset csv, whose --spec names its CSV)")
    p.add_argument("--dataset", default="nih-cxr-lt", choices=NAMES, help=dataset_help)
    p.add_argument("--size", type=int_at_least(1), default=256, help="side of the square stored images, px")


def parser(prog: str = "python -m ingest") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = _sub(sub, "synth", "write a synthetic dataset in the exact NIH layout (single-label files and the "
             "multi-label release's miccai2023_* files over the same images)")
    s.add_argument("--out", type=Path, required=True, help="folder for the images and labels/")
    s.add_argument("--dataset", default="nih-cxr-lt", choices=["nih-cxr-lt", *REAL_TRAIN],
                   help="which release's layout (the 2024 and 2026 ones: see the README's dataset table)")
    s.add_argument("--scale", type=fraction, default=1.0, help="fraction of every split to keep, in (0, 1]")
    s.add_argument("--image-size", type=int_at_least(1), default=1024, help="side of the square PNGs, px")
    s.add_argument("--seed", type=int, default=0, help="labels and pixels")
    s.add_argument("--workers", type=int_at_least(0), default=os.cpu_count(), help="processes (0 or 1: none)")
    b = _sub(sub, "build-shards", "pack images + label files into resized shards")
    _images_and_labels(b, "which label files and classes")
    b.add_argument("--out", type=Path, required=True, help="the shards dir (a rerun finishes an interrupted build)")
    b.add_argument("--format", default="jpeg", choices=["jpeg", "png"], help="stored image encoding")
    b.add_argument("--quality", type=quality, default=95, help="JPEG quality, 1-100")
    b.add_argument("--shard-size", type=int_at_least(1), default=1000, help="images per shard")
    b.add_argument("--seed", type=int, default=0, help="pack-time shuffle")
    b.add_argument("--workers", type=int_at_least(0), default=os.cpu_count(), help="processes (0 or 1: none)")
    b.add_argument("--max-pixels", type=int_at_least(1), default=MAX_PIXELS,
                   help="refuse source images with more pixels (checked before decoding)")
    b.add_argument("--skip-bad", action="store_true",
                   help="leave undecodable images out (listed in ingest_report.json)")
    b.add_argument("--spec", type=Path, help="--dataset csv: the YAML that describes the CSV (see README)")
    b.add_argument("--window", choices=WINDOWS, help="16-bit images to 8-bit: sbit (by the bits used) or "
                   "percentile (0.5th to 99.5th percentile to 0 to 255); default: percentile for the 2026 release, "
                   "else sbit")
    b.add_argument("--val-fraction", type=share, help="a release without a val split (2024 without its "
                   "development file, 2026): this share of the training patients validates (default 0.1)")
    b.add_argument("--test-fraction", type=share, help="likewise for test, where the release has no test file "
                   "(default 0.1)")
    b.add_argument("--split-seed", type=int, help="seed of the patient-grouped val / test split (default 0)")
    v = _sub(sub, "verify", "re-hash a shards dir and check its labels, splits, counts and groups")
    v.add_argument("dir", type=Path, help="the shards dir")
    st = _sub(sub, "stats", "per-split, per-class counts and groups")
    st.add_argument("dir", type=Path, help="the shards dir")
    st.add_argument("--head-above", type=int_at_least(0), default=HEAD_ABOVE, help="head: more training images")
    st.add_argument("--tail-below", type=int_at_least(0), default=TAIL_BELOW, help="tail: fewer training images")
    be = _sub(sub, "bench", "build-shards images/s per core against the decode + resize floor")
    _images_and_labels(be, "which label files")
    be.add_argument("--workers", type=worker_counts, default="1,2", help="comma-separated worker counts to time")
    be.add_argument("--floor-images", type=int_at_least(1), default=500, help="images timed for the floor")
    return p


def _check_labels(a) -> None:
    spec = getattr(a, "spec", None)
    if a.dataset == "csv" and spec is None:
        raise UsageError("--dataset csv needs --spec SPEC.yaml (the YAML that describes the CSV; see README)")
    if a.dataset != "csv" and spec is not None:
        raise UsageError(f"--spec is for --dataset csv; --dataset {a.dataset} reads its label files from --labels")
    if a.dataset != "csv" and a.labels is None:
        raise UsageError(f"--dataset {a.dataset} needs --labels, the folder with its label CSVs")


def run(a) -> int:
    if a.cmd == "synth" and a.dataset != "nih-cxr-lt":
        info = synth_release(a.dataset, a.out, a.scale, a.image_size, a.seed)
        print(f"wrote {info['images']} images ({a.image_size} px) and labels to {a.out}: {info['rows']}")
    elif a.cmd == "synth":
        info = synth(a.out, a.scale, a.image_size, a.seed, a.workers)
        print(f"wrote {info['images']} images ({a.image_size} px) and labels to {a.out}: "
              f"single-label {info['single_label']}, multi-label {info['multi_label']}")
    elif a.cmd == "build-shards":
        _check_labels(a)
        opts = BuildOptions(a.dataset, a.size, a.format, a.quality, a.shard_size, a.seed, a.workers, a.skip_bad,
                            a.max_pixels, a.window, a.val_fraction, a.test_fraction, a.split_seed,
                            str(a.spec) if a.spec else None)
        m = build_shards(a.images, a.labels, a.out, opts)
        print(f"{a.out}: {sum(s['samples'] for s in m['shards'])} images in {len(m['shards'])} shards "
              f"({sum(s['bytes'] for s in m['shards']) / 1e6:.1f} MB), {m['skipped']} skipped"
              + (", synthetic pixels" if m.get("synthetic") else ""))
    elif a.cmd == "verify":
        problems = verify(a.dir)
        for line in problems:
            print(f"PROBLEM {line}")
        print(f"{a.dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    elif a.cmd == "bench":
        _check_labels(a)
        print(table(bench(a.images, a.labels, a.size, a.workers, a.floor_images, a.dataset)))
    elif a.cmd == "stats":
        print(describe(open_shards(a.dir), a.head_above, a.tail_below))
    return 0


def main(argv=None, prog: str = "python -m ingest") -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    a = parser(prog).parse_args(argv)
    try:
        return run(a)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
