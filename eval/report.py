"""python -m eval report RUN: the run's numbers with 95% bootstrap intervals, tables and figures.

Each task has its report module (numbers, per_class_table, write_figures, markdown); this one picks the run's.
Every figure comes as PNG and PDF, its caption (with the run's details) in captions.md.
Everything comes from the saved predictions and metrics.csv, so a report needs neither the model nor a GPU,
and its point estimates equal what the run logged.
"""
import json
from pathlib import Path

from shards.atomic import make_dir, write_atomic
from shards.errors import UsageError

from . import multilabel_report, single_label_report
from .calibration_report import calibration_numbers, write_reliability
from .report_page import short_title, write_captions
from .runs import finished, read_json, run_predictions, task_of_run
from .studies import write_studies
from .subgroups import subgroup_numbers

REPORTS = {"single-label": single_label_report, "multi-label": multilabel_report}


def report(run: Path, n_boot: int = 1000, seed: int = 0, by_patient: bool = False, calibrate: str = "none",
           counts: bool = False, by: str | None = None, metadata: Path | None = None,
           by_study: str | None = None) -> Path:
    """Writes the report into RUN/report/, or RUN/report-by-patient/; returns that dir. ``calibrate``:
    "temperature" adds the numbers after temperature scaling fitted on val; ``counts``: the confusion matrix's
    cells in images, not percent; ``by`` and ``metadata``: the headline numbers per subgroup of that column of
    that CSV; ``by_study`` ("mean" or "max"): the report of the run's studies, RUN/by-study-HOW/report/."""
    if (by is None) != (metadata is None):
        raise UsageError("--by COLUMN and --metadata CSV go together: give both (for example --by sex --metadata "
                         "Data_Entry_2017_v2020.csv), or neither")
    if by_study and by:
        raise UsageError("--by joins the metadata on image ids and --by-study scores studies; give one of them")
    run = finished(run)
    if by_study:
        return report(write_studies(run, by_study), n_boot, seed, by_patient, calibrate, counts)
    task = task_of_run(run)
    task_report = REPORTS[task]
    logged = read_json(run / "summary.json")
    out = run / ("report-by-patient" if by_patient else "report")  # by-image and by-patient reports side by side
    make_dir(out)
    s = task_report.numbers(run, n_boot, seed, by_patient)
    s.update(task=task, calibration=calibration_numbers(run, task, calibrate))
    if "studies" in read_json(run / "config.json"):
        s["studies"] = read_json(run / "config.json")["studies"]
    if by is not None:
        test = run_predictions(run, "test")
        s["subgroups"] = subgroup_numbers(test, task, by, metadata, n_boot, seed, test.patients if by_patient else None)
    write_atomic(out / "summary.json", json.dumps(s, indent=1))
    per_class = task_report.per_class_table(run, s)
    write_atomic(out / "per_class.csv", per_class.to_csv(index=False))
    links = {**task_report.write_figures(run, out, s, logged.get("best_epoch"), counts),
             **write_reliability(run, out, task, s, short_title(s, "reliability on test"))}
    write_captions(run, out, s, links)
    write_atomic(out / "report.md", task_report.markdown(run, s, per_class, links))
    return out
