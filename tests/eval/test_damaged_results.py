"""Results that would give wrong numbers are refused in one line naming the file, by report and table."""
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from eval.__main__ import main
from eval.predictions import read_predictions, write_predictions


@pytest.fixture
def run(stage1_run, tmp_path):
    return shutil.copytree(stage1_run, tmp_path / "ce", ignore=shutil.ignore_patterns("report*"))


def rewrite(split, change):
    def apply(run):
        path = run / "predictions" / f"{split}.parquet"
        p = read_predictions(path)
        keys, patients, labels, logits = change(p.keys.copy(), p.patients.copy(), p.labels.copy(), p.logits.copy())
        write_predictions(path, keys, patients, labels, logits)
    return apply


def nan_logits(k, pa, la, lo):
    lo[:] = np.nan
    return k, pa, la, lo


def inf_logit(k, pa, la, lo):
    lo[3, 1] = np.inf
    return k, pa, la, lo


def duplicate_key(k, pa, la, lo):
    k[1] = k[0]
    return k, pa, la, lo


def label(value):
    def change(k, pa, la, lo):
        la[0] = value
        return k, pa, la, lo
    return change


def empty(k, pa, la, lo):
    return k[:0], pa[:0], la[:0], lo[:0]


def narrow(k, pa, la, lo):
    return k, pa, la, lo[:, :5]


def by_pandas(run):
    """The file read and written again by pandas: list columns, not fixed-size lists; the numbers are kept."""
    path = run / "predictions" / "test.parquet"
    pd.read_parquet(path).to_parquet(path)


def config(key, value):
    def apply(run):
        meta = json.loads((run / "config.json").read_text())
        meta[key] = value
        (run / "config.json").write_text(json.dumps(meta))
    return apply


def summary_folder(run):
    (run / "summary.json").unlink()
    (run / "summary.json").mkdir()


def bad_metrics(text):
    def apply(run):
        (run / "metrics.csv").write_text(text)
    return apply


DAMAGE = {
    "all-NaN logits": (rewrite("test", nan_logits), "test.parquet: .* rows with NaN or infinite logits"),
    "an inf logit": (rewrite("balanced-test", inf_logit), "balanced-test.parquet: 1 rows with NaN or infinite"),
    "duplicate key": (rewrite("test", duplicate_key), "test.parquet: key .* appears more than once"),
    "label -1": (rewrite("test", label(-1)), r"test.parquet: label -1 outside 0..19"),
    "label 99": (rewrite("balanced-test", label(99)), r"balanced-test.parquet: label 99 outside 0..19"),
    "empty test split": (rewrite("test", empty), "test.parquet: no rows"),
    "logits width 5": (rewrite("test", narrow), "test.parquet: logits of width 5, the run has 20 classes"),
    "3 class names": (config("class_names", ["a", "b", "c"]), "config.json: 'groups' is not one of"),
    "groups not a list": (config("groups", "head"), "config.json: 'groups'"),
    "summary.json a folder": (summary_folder, "summary.json: cannot be read"),
    "metrics.csv binary": (bad_metrics("\x00\x01\xff\xfe"), "metrics.csv"),
    "metrics.csv text": (bad_metrics("epoch,train_loss\n1,abc\n"), "metrics.csv: no column"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
@pytest.mark.parametrize("cmd", ["report", "table"])
def test_results_that_would_give_wrong_numbers_are_one_line_naming_the_file(run, tmp_path, capsys, name, cmd):
    damage, said = DAMAGE[name]
    damage(run)
    if cmd == "table" and name.startswith("metrics.csv"):
        pytest.skip("the table reads no training history")
    argv = (["report", str(run)] if cmd == "report" else ["table", str(run), "--out", str(tmp_path / "t" / "t")])
    assert main(argv + ["--resamples", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    import re

    assert re.search(said, err), err
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").iterdir())


def test_a_predictions_file_rewritten_by_pandas_still_reads_the_same(run):
    before = read_predictions(run / "predictions" / "test.parquet")
    by_pandas(run)
    assert not pq.read_schema(run / "predictions" / "test.parquet").field("logits").type.list_size > 0 \
        if hasattr(pq.read_schema(run / "predictions" / "test.parquet").field("logits").type, "list_size") else True
    after = read_predictions(run / "predictions" / "test.parquet", 20)
    assert np.array_equal(before.logits, after.logits) and np.array_equal(before.labels, after.labels)


def test_a_dataset_name_with_newlines_and_shell_never_reaches_the_report(run, capsys):
    config("dataset", "nih\n$(rm -rf ~)\n# owned")(run)
    assert main(["report", str(run), "--resamples", "5"]) == 2
    assert "'dataset' that is not a name" in capsys.readouterr().err
    assert not (run / "report" / "report.md").exists()
