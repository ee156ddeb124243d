import json
import shutil

import numpy as np
import pandas as pd
import pytest

from eval import metrics as m
from eval.predictions import read_predictions
from eval.report import report
from eval.report_page import markdown_table
from eval.tasks import softmax
from shards.errors import UsageError
from train.loop.fit import fit

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
            if not key.startswith("per_class") and np.isfinite(entry["value"]):
                lo, hi = entry["ci95"]
                assert lo <= entry["value"] <= hi, (section, key)
    for name, (lo, hi) in s["balanced_test"]["per_class_ci95"].items():
        assert lo <= s["balanced_test"]["per_class"][name] <= hi, name
    assert s["groups"] == logged["groups"]


def test_report_writes_readable_tables_and_non_empty_figures(stage1_run):
    out = report(stage1_run, n_boot=50)
    text = (out / "report.md").read_text()
    assert "| balanced-test: Head |" in text and "| No Finding | head |" in text
    for png in ("training_curves.png", "confusion_balanced_test.png", "per_class_accuracy.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_the_patient_bootstrap_report_goes_beside_the_image_one_and_its_title_says_its_unit(run_copy):
    by_image, by_patient = report(run_copy, n_boot=20), report(run_copy, n_boot=20, by_patient=True)
    assert (by_image, by_patient) == (run_copy / "report", run_copy / "report-by-patient")
    for out, unit in ((by_image, "image"), (by_patient, "patient")):
        assert json.loads((out / "summary.json").read_text())["bootstrap"]["unit"] == unit
        title = (out / "report.md").read_text().splitlines()[0]
        assert title.startswith("# Report: ce on nih-cxr-lt, model tiny, seed 0 (run ce)")
        assert title.endswith(f"; 95% intervals by {unit}")
        assert (out / "per_class_accuracy.png").exists()


def test_a_run_without_training_history_still_reports(stage1_run, shards_dir, tmp_path):
    run = tmp_path / "tau"
    fit(tiny_fit(shards_dir, run, "tau-norm", init_from=str(stage1_run)))
    out = report(run, n_boot=50)
    assert not (out / "training_curves.png").exists() and (out / "per_class_accuracy.png").exists()
    assert "training curves" not in (out / "report.md").read_text()


def test_report_of_a_dir_without_config_json_says_it_is_not_a_run_dir(tmp_path):
    with pytest.raises(UsageError, match=f"^{tmp_path} is not a run dir \\(no config.json\\); give the --out of a "
                       "`python -m train fit`$"):
        report(tmp_path)


def test_report_of_an_unfinished_run_says_so(run_copy):
    (run_copy / "summary.json").unlink()
    with pytest.raises(UsageError, match="no summary.json; the run has not finished"):
        report(run_copy)


def test_report_of_a_path_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(UsageError, match="nope does not exist"):
        report(tmp_path / "nope")


@pytest.fixture
def run_copy(stage1_run, tmp_path):
    """A writable copy of the finished ce run."""
    return shutil.copytree(stage1_run, tmp_path / "ce")


def _set_synthetic(run, value: bool):
    meta = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**meta, "synthetic": value}))


@pytest.mark.parametrize("synthetic", [True, False])
def test_a_report_on_synthetic_pixels_says_so_in_its_title_and_a_real_one_does_not(run_copy, synthetic):
    _set_synthetic(run_copy, synthetic)
    out = report(run_copy, n_boot=20)
    title = (out / "report.md").read_text().splitlines()[0]
    assert title.startswith("# Report: ce on nih-cxr-lt, model tiny, seed 0 (run ce)")
    assert ("SYNTHETIC pixels, not comparable with published results" in title) == synthetic
    assert json.loads((out / "summary.json").read_text())["synthetic"] == synthetic


def test_the_report_says_what_each_column_is_measured_on_and_what_the_brackets_are(stage1_run):
    out = report(stage1_run, n_boot=30, seed=4, by_patient=True)
    text = (out / "report.md").read_text()
    n_bt = len(read_predictions(stage1_run / "predictions" / "balanced-test.parquet").labels)
    n_test = len(read_predictions(stage1_run / "predictions" / "test.parquet").labels)
    assert f"on balanced-test ({n_bt} images); Avg: the mean of the three" in text
    assert f"AUROC (macro one-vs-rest) and MCC: on test ({n_test} images)" in text
    assert "Brackets: 95% percentile bootstrap interval, 30 resamples of patients (seed 4)." in text


def test_the_report_says_a_cosine_classifiers_logits_carry_its_losses_scale():
    from eval.single_label_report import scores_note
    from train.methods.registry import get_method

    def meta(method, paper_ldam=False):
        return {"method": vars(get_method(method)), "config": {"paper_ldam": paper_ldam}}

    assert "s x cosine with s = 30.0, the scale its loss used" in scores_note(meta("cb-ldam-drw"))
    assert scores_note(meta("ce")) == "AUROC ranks the softmax of the saved logits."
    assert scores_note(meta("ldam", paper_ldam=True)) == "AUROC ranks the softmax of the saved logits."


@pytest.mark.parametrize("name", ["summary.json", "config.json", "predictions/test.parquet",
                                  "predictions/balanced-test.parquet"])
def test_a_damaged_file_of_the_run_is_one_usage_error_naming_it(run_copy, name):
    path = run_copy / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(UsageError, match=f"{path} is damaged"):
        report(run_copy, n_boot=5)


def test_the_markdown_table_writes_floats_to_3_decimals_and_nan_as_nan_unless_told_otherwise():
    df = pd.DataFrame({"class": ["a", "b"], "n": [3, 0], "recall": [0.25, float("nan")]})
    rows = ["| class | n | recall |", "|---|---|---|", "| a | 3 | 0.250 |"]
    assert markdown_table(df) == "\n".join(rows + ["| b | 0 | nan |"])
    assert markdown_table(df, "—") == "\n".join(rows + ["| b | 0 | — |"])


def test_every_report_figure_is_also_a_vector_pdf_and_captions_md_names_each_with_the_run(run_copy):
    out = report(run_copy, n_boot=5, counts=True)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"confusion_balanced_test.png", "per_class_accuracy.png", "reliability.png"} <= set(pngs)
    for png in pngs:
        assert (out / png).with_suffix(".pdf").read_bytes().startswith(b"%PDF"), png
    captions = (out / "captions.md").read_text()
    assert captions.startswith("# Figures of ce on nih-cxr-lt, model tiny, seed 0 (run ce)")
    assert all(f"- `{png}` (vector: `{png[:-4]}.pdf`)" in captions for png in pngs)
    assert "by training frequency" in captions and "Clopper-Pearson" in captions
