"""python -m train fit | suite | methods"""
import argparse
import logging
import sys

from shards.reader import NotAShardsDir

from .config import add_flags, from_args
from .fit import ResumeRefused, fit
from .methods import METHODS, PAPER_METHODS
from .models import WeightsUnavailable
from .trainer import NonFiniteLoss

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: checkpointed, rerun the same command to resume


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train one method into a run dir (resumes by default)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_flags(f)
    sub.add_parser("methods", help="list the methods")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    a = parse(argv)
    if a.cmd == "methods":
        for name, m in METHODS.items():
            tag = "" if name in PAPER_METHODS else "  [beyond the paper]"
            print(f"{name:<18} {m.summary}{tag}")
        return 0
    cfg = from_args(a)
    if not cfg.shards or not cfg.out:
        print("error: fit needs --shards DIR and --out RUN", file=sys.stderr)
        return 2
    try:
        status = fit(cfg)
    except (ResumeRefused, NotAShardsDir, WeightsUnavailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    if status == "interrupted":
        print(f"interrupted: checkpoint in {cfg.out}/last.pt; rerun the same command to resume")
        return EXIT_INTERRUPTED
    print(f"{cfg.out}: finished; see {cfg.out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
