"""python -m train fit | suite | methods"""
import argparse
import logging
import sys
from pathlib import Path

import torch

from shards.reader import NotAShardsDir

from .config import add_flags, from_args
from .distributed import init
from .fit import ResumeRefused, fit
from .methods import METHODS, PAPER_METHODS
from .models import WeightsUnavailable
from .suite import parse_methods, suite
from .trainer import NonFiniteLoss

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: checkpointed, rerun the same command to resume


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train one method into a run dir (resumes by default)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_flags(f)
    s = sub.add_parser("suite", help="every method and seed into one dir, then the results table",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--suite-out", "--out", dest="suite_out", required=True)
    s.add_argument("--methods", default="all", help="all (the paper's 15), everything, or a,b,c")
    s.add_argument("--seeds", default="0", help="comma-separated")
    add_flags(s, exclude=("out", "method", "seed", "init_from"))
    b = sub.add_parser("bench", help="loader-only, model-only and end-to-end images/s on this machine",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--json", default="", help="also write the numbers to this file")
    b.add_argument("--baseline-png", default="", help="time the paper's input path on these 1024 px PNGs")
    add_flags(b, exclude=("out", "method", "init_from", "resume"))
    sub.add_parser("methods", help="list the methods")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    world = init(getattr(a, "device", "auto"))
    # under torchrun only rank 0 talks; the others log warnings and errors
    logging.basicConfig(level=logging.INFO if world.main else logging.WARNING, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return run(a, world)
    finally:
        if world.active:
            torch.distributed.destroy_process_group()


def run(a, world) -> int:
    say = print if world.main else (lambda *args, **kw: None)
    if a.cmd == "methods":
        for name, m in METHODS.items():
            tag = "" if name in PAPER_METHODS else "  [beyond the paper]"
            say(f"{name:<18} {m.summary}{tag}")
        return 0
    cfg = from_args(a)
    if a.cmd == "bench":
        return run_bench(a, cfg)
    if not cfg.shards or not (cfg.out or a.cmd == "suite"):
        print(f"error: {a.cmd} needs --shards DIR and --out DIR", file=sys.stderr)
        return 2
    try:
        if a.cmd == "suite":
            seeds = [int(s) for s in a.seeds.split(",")]
            status = suite(cfg, a.suite_out, parse_methods(a.methods), seeds)
        else:
            status = fit(cfg)
    except (ResumeRefused, NotAShardsDir, WeightsUnavailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    where = a.suite_out if a.cmd == "suite" else cfg.out
    if status == "interrupted":
        say(f"interrupted: checkpointed in {where}; rerun the same command to resume")
        return EXIT_INTERRUPTED
    if a.cmd == "suite":
        say((Path(where) / "results.md").read_text())
    say(f"{where}: finished; see {where}/{'results.md' if a.cmd == 'suite' else 'summary.json'}")
    return 0


def run_bench(a, cfg) -> int:
    import json

    from .bench import bench, table

    result = bench(cfg, a.steps, a.warmup, a.baseline_png or None)
    print(table(result))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
