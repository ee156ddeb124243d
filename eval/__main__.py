"""python -m eval report RUN | table DIR_OR_RUNS... --out PREFIX"""
import argparse
import logging
import sys
from pathlib import Path

from .report import report
from .table import find_runs, write_table


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    p = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="a run's numbers with 95%% intervals, tables and figures, in RUN/report/")
    r.add_argument("run", type=Path)
    r.add_argument("--resamples", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--by-patient", action="store_true", help="bootstrap whole patients, not images")
    t = sub.add_parser("table", help="the paper's Table 1 for runs or suite dirs (md, tex, csv, comparison png)")
    t.add_argument("paths", nargs="+", type=Path)
    t.add_argument("--out", type=Path, required=True, help="prefix: writes PREFIX.md, .tex, .csv, .png")
    t.add_argument("--resamples", type=int, default=1000)
    a = p.parse_args(argv)
    try:
        if a.cmd == "report":
            out = report(a.run, a.resamples, a.seed, a.by_patient)
            print((out / "report.md").read_text())
            print(f"written to {out}")
        else:
            if not find_runs(a.paths):
                raise FileNotFoundError(f"no finished runs (summary.json) in {', '.join(map(str, a.paths))}")
            print(write_table(a.paths, a.out, a.resamples))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
