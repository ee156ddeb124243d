"""python -m eval report RUN | table DIR_OR_RUNS... --out PREFIX | ensemble RUN1 RUN2 ... --out DIR"""
import argparse
import logging
import sys
from pathlib import Path

from shards.errors import UsageError
from shards.flags import int_at_least

from .calibration_report import CALIBRATIONS
from .ensemble import COMBINES, ensemble
from .report import report
from .studies import AGGREGATES
from .table import find_runs, table_files, write_table


def parse(argv, prog: str = "python -m eval"):
    defaults = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="a run's numbers with 95%% intervals, tables and figures, in RUN/report/ "
                       "(--by-patient: RUN/report-by-patient/)",
                       formatter_class=defaults)
    r.add_argument("run", type=Path, help="a run dir (the --out of python -m train fit)")
    r.add_argument("--resamples", type=int_at_least(1), default=1000, help="bootstrap resamples for the intervals")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    r.add_argument("--by-patient", action="store_true", help="bootstrap whole patients, not images")
    r.add_argument("--calibrate", choices=CALIBRATIONS, default="none",
                   help="temperature: fit a temperature on val by NLL (one per class for multi-label) and report "
                        "ECE / NLL / Brier on test before and after it")
    # SUPPRESS: no "(default: None)" in the help; main reads an absent one as None
    r.add_argument("--by-study", choices=sorted(AGGREGATES), default=argparse.SUPPRESS,
                   help="score studies, each the mean or max of its images' probabilities (needs study_id in the "
                        "shards index: MIMIC-CXR-LT, CXR-LT 2024); written to RUN/by-study-HOW/report/")
    r.add_argument("--by", metavar="COLUMN", default=argparse.SUPPRESS,
                   help="headline numbers per subgroup of this column of --metadata (sex, age band, view, or any "
                        "column's name)")
    r.add_argument("--metadata", type=Path, metavar="CSV", default=argparse.SUPPRESS,
                   help="a CSV with an image id column (NIH: Data_Entry_2017_v2020.csv) joined on the run's test "
                        "images")
    r.add_argument("--counts", action="store_true",
                   help="the confusion matrix's cells in images, not percent of the row")
    t = sub.add_parser("table", help="the paper's Table 1, or the multi-label table, for runs or suite dirs "
                                     "(md, tex, csv, comparison png and pdf)",
                       formatter_class=defaults)
    t.add_argument("paths", nargs="+", type=Path, help="run dirs, or suite dirs holding them")
    # no default to show: SUPPRESS keeps ArgumentDefaultsHelpFormatter from adding "(default: None)"
    t.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS,
                   help="prefix: writes PREFIX.md, .tex, .csv, .png, .pdf (required)")
    t.add_argument("--resamples", type=int_at_least(1), default=1000, help="bootstrap resamples for the intervals")
    t.add_argument("--by-patient", action="store_true", help="bootstrap whole patients, not images")
    e = sub.add_parser("ensemble", help="combine the probabilities of runs of the same shards into a run-like dir "
                                        "that report and table read", formatter_class=defaults)
    e.add_argument("runs", nargs="+", type=Path, help="run dirs of one task, shards and classes")
    e.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS,
                   help="a new dir for the ensemble (required)")
    e.add_argument("--combine", choices=sorted(COMBINES), default="mean",
                   help="mean: of the probabilities; logit-mean: softmax (sigmoid) of the mean logits; geometric: "
                        "the normalised geometric mean of the probabilities (equal to logit-mean)")
    return p.parse_args(argv)


def main(argv=None, prog: str = "python -m eval") -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    a = parse(argv, prog)
    try:
        if a.cmd == "report":
            given = vars(a)
            out = report(a.run, a.resamples, a.seed, a.by_patient, a.calibrate, a.counts, given.get("by"),
                         given.get("metadata"), given.get("by_study"))
            print((out / "report.md").read_text())
            print(f"written to {out}")
        elif a.cmd == "ensemble":
            print(f"written to {ensemble(a.runs, a.out, a.combine)}; python -m eval report {a.out} reads it")
        else:
            if not find_runs(a.paths):
                raise UsageError(f"no finished runs (summary.json) in {', '.join(map(str, a.paths))}; give run dirs "
                                 f"or suite dirs")
            print(write_table(a.paths, a.out, a.resamples, a.by_patient))
            print(f"written: {', '.join(map(str, table_files(a.out)))}")
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
