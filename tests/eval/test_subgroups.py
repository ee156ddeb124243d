import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from eval.__main__ import main as eval_main
from eval.predictions import read_predictions
from eval.report import report
from shards.errors import UsageError


@pytest.fixture
def run_and_metadata(stage1_run, tmp_path):
    run = shutil.copytree(stage1_run, tmp_path / "ce", ignore=shutil.ignore_patterns("*.pt", "report*"))
    test = read_predictions(run / "predictions" / "test.parquet")
    rng = np.random.default_rng(0)
    n = len(test.keys)
    meta = pd.DataFrame({"Image Index": [f"{k}.png" for k in test.keys], "Finding Labels": "x",
                         "Patient Age": rng.integers(5, 95, n).astype(str), "Patient Gender": rng.choice(["M", "F"], n),
                         "View Position": rng.choice(["PA", "AP"], n)})
    meta = meta.iloc[2:]  # two test images the CSV does not list
    meta.to_csv(tmp_path / "Data_Entry_2017_v2020.csv", index=False)
    return run, tmp_path / "Data_Entry_2017_v2020.csv", test, meta


def test_each_sex_gets_the_headline_numbers_of_its_test_images_and_unlisted_images_none(run_and_metadata):
    run, csv, test, meta = run_and_metadata
    s = json.loads((report(run, n_boot=5, by="sex", metadata=csv) / "summary.json").read_text())["subgroups"]
    assert s["unmatched"] == 2 and set(s["groups"]) == {"F", "M"}
    sex = dict(zip(meta["Image Index"].str[:-4], meta["Patient Gender"]))
    for value, row in s["groups"].items():
        rows = np.array([sex.get(k) == value for k in test.keys])
        y, p = test.labels[rows], test.logits[rows].argmax(1)
        assert row["images"] == rows.sum()
        assert row["bacc"]["value"] == pytest.approx(balanced_accuracy_score(y, p))
        assert row["mf1"]["value"] == pytest.approx(f1_score(y, p, average="macro", labels=np.union1d(y, p)))
        lo, hi = row["bacc"]["ci95"]
        assert lo <= row["bacc"]["value"] <= hi and lo < hi
    assert "## Subgroups by sex" in (run / "report" / "report.md").read_text()


def test_age_bands_are_derived_from_the_age_and_any_column_can_be_named(run_and_metadata):
    run, csv, test, meta = run_and_metadata
    s = json.loads((report(run, n_boot=5, by="age band", metadata=csv) / "summary.json").read_text())["subgroups"]
    ages = meta["Patient Age"].astype(int)
    want = pd.cut(ages, [0, 20, 40, 60, 80, np.inf], right=False,
                  labels=["under 20", "20-39", "40-59", "60-79", "80 and over"]).value_counts()
    assert {k: v["images"] for k, v in s["groups"].items()} == {k: v for k, v in want.items() if v}
    s = json.loads((report(run, n_boot=5, by="View Position", metadata=csv) / "summary.json").read_text())
    assert set(s["subgroups"]["groups"]) == {"AP", "PA"}


def test_a_missing_file_or_column_is_one_line_naming_it_and_no_csv_no_subgroups(run_and_metadata, capsys):
    run, csv, _, _ = run_and_metadata
    assert eval_main(["report", str(run), "--resamples", "2", "--by", "ethnicity", "--metadata", str(csv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--by ethnicity" in err and "Patient Gender" in err
    assert eval_main(["report", str(run), "--resamples", "2", "--by", "sex", "--metadata", str(csv) + "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(UsageError, match="go together"):
        report(run, n_boot=2, by="sex")
    s = json.loads((report(run, n_boot=2) / "summary.json").read_text())
    assert "subgroups" not in s and "Subgroups" not in (run / "report" / "report.md").read_text()


def test_the_report_help_shows_no_none_default_for_the_optional_flags(capsys):
    with pytest.raises(SystemExit):
        eval_main(["report", "--help"])
    text = capsys.readouterr().out
    assert "--by COLUMN" in text and "--by-study" in text and "(default: None)" not in text
