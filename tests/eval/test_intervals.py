import json

import numpy as np
import pytest
from scipy.stats import binomtest

from eval.intervals import NAME, clopper_pearson
from eval.predictions import read_predictions
from eval.report import report
from eval import metrics as m


def test_clopper_pearson_gives_the_issues_known_answers_for_classes_that_are_always_right():
    low, high = clopper_pearson([3, 15], [3, 15])
    assert low.round(3).tolist() == [0.292, 0.782] and high.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("k,n", [(0, 1), (0, 7), (1, 2), (3, 10), (7, 7), (40, 97), (250, 1000)])
def test_clopper_pearson_equals_scipys_exact_binomial_interval(k, n):
    low, high = clopper_pearson(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert (float(low), float(high)) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_a_class_without_images_has_no_interval():
    low, high = clopper_pearson([0, 2], [0, 4])
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 < low[1] < 0.5 < high[1] < 1


def test_the_single_label_report_gives_each_class_its_exact_interval_and_names_it(stage1_run, tmp_path):
    out = report(stage1_run, n_boot=20)
    s = json.loads((out / "summary.json").read_text())
    bt = read_predictions(stage1_run / "predictions" / "balanced-test.parquet")
    names = list(s["balanced_test"]["per_class"])
    cm = m.confusion_matrix(bt.labels, bt.predicted, len(names))
    for i, name in enumerate(names):
        ci = binomtest(int(cm[i, i]), int(cm[i].sum())).proportion_ci(method="exact")
        assert s["balanced_test"]["per_class_ci95"][name] == pytest.approx([ci.low, ci.high]), name
    assert s["balanced_test"]["per_class_interval"] == NAME
    assert NAME in (out / "report.md").read_text()


def test_the_multilabel_report_gives_each_classs_recall_at_its_tuned_threshold_an_exact_interval(tmp_path):
    from test_multilabel_report import ml_run  # the hand-made multi-label run dir

    run, preds = ml_run(tmp_path, no_test_positive=(5,))
    s = json.loads((report(run, n_boot=10) / "summary.json").read_text())
    _, labels, logits = preds["test"]
    for i, (name, row) in enumerate(s["per_class"].items()):
        found = int(((labels[:, i] > 0) & (1 / (1 + np.exp(-logits[:, i])) >= row["threshold"])).sum())
        n = int(labels[:, i].sum())
        if n == 0:
            assert np.isnan(row["recall_tuned"]["value"]) and np.isnan(row["recall_tuned"]["ci95"][0])
            continue
        ci = binomtest(found, n).proportion_ci(method="exact")
        assert row["recall_tuned"]["value"] == pytest.approx(found / n)
        assert row["recall_tuned"]["ci95"] == pytest.approx([ci.low, ci.high]), name
