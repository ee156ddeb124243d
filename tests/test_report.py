import json

import numpy as np
import pytest

from eval import metrics as m
from eval.predictions import read_predictions
from eval.report import report
from eval.summary import softmax
from train.fit import fit

from conftest import tiny_fit


def test_report_numbers_equal_the_metrics_on_the_saved_predictions_and_the_logged_summary(stage1_run):
    out = report(stage1_run, n_boot=200)
    s = json.loads((out / "summary.json").read_text())
    logged = json.loads((stage1_run / "summary.json").read_text())
    meta = json.loads((stage1_run / "config.json").read_text())
    test = read_predictions(stage1_run / "predictions" / "test.parquet")
    bt = read_predictions(stage1_run / "predictions" / "balanced-test.parquet")
    assert s["test"]["bacc"]["value"] == m.balanced_accuracy(test.labels, test.predicted, 20) == logged["test"]["bacc"]
    assert s["test"]["mf1"]["value"] == logged["test"]["mf1"]
    assert s["test"]["auroc"]["value"] == pytest.approx(m.macro_auroc(test.labels, softmax(test.logits)))
    assert s["test"]["mcc"]["value"] == pytest.approx(logged["test"]["mcc"])
    groups = m.group_accuracy(bt.labels, bt.predicted, meta["groups"])
    for g in ("head", "medium", "tail", "avg"):
        assert s["balanced_test"][g]["value"] == pytest.approx(groups[g], nan_ok=True)
    for section in ("balanced_test", "test"):
        for key, entry in s[section].items():
            if key != "per_class" and np.isfinite(entry["value"]):
                lo, hi = entry["ci95"]
                assert lo <= entry["value"] <= hi, (section, key)
    assert s["groups"] == logged["groups"]


def test_report_writes_readable_tables_and_non_empty_figures(stage1_run):
    out = report(stage1_run, n_boot=50)
    text = (out / "report.md").read_text()
    assert "| balanced-test Head |" in text and "| No Finding | head |" in text
    for png in ("training_curves.png", "confusion_balanced_test.png", "per_class_accuracy.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_patient_bootstrap_is_available(stage1_run):
    s = json.loads((report(stage1_run, n_boot=50, by_patient=True) / "summary.json").read_text())
    assert s["bootstrap"]["unit"] == "patient"


def test_a_run_without_training_history_still_reports(stage1_run, shards_dir, tmp_path):
    run = tmp_path / "tau"
    fit(tiny_fit(shards_dir, run, "tau-norm", init_from=str(stage1_run)))
    out = report(run, n_boot=50)
    assert not (out / "training_curves.png").exists() and (out / "per_class_accuracy.png").exists()
    assert "training curves" not in (out / "report.md").read_text()


def test_report_of_an_unfinished_run_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="has not finished"):
        report(tmp_path)
