import json

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from eval.__main__ import main as eval_main
from eval.calibration import calibration, ece, reliability
from eval.tasks import sigmoid, softmax
from eval.temperature import fit_temperature


def test_ece_of_a_hand_made_array_equals_the_value_computed_by_hand():
    # bins of 1/15: 0.95 -> bin 14, 0.55 -> bin 8, 0.25 -> bin 3
    # ECE = 2/5 |0.5 - 0.95| + 2/5 |1 - 0.55| + 1/5 |0 - 0.25| = 0.18 + 0.18 + 0.05
    assert ece([0.95, 0.95, 0.55, 0.55, 0.25], [1, 0, 1, 1, 0]) == pytest.approx(0.41)
    counts, conf, acc = reliability([0.95, 0.95, 0.55, 0.55, 0.25], [1, 0, 1, 1, 0])
    assert counts[[3, 8, 14]].tolist() == [1, 2, 2] and counts.sum() == 5 and np.isnan(acc[0])
    assert ece([1 / 15, 2 / 15], [1, 1]) == pytest.approx(1 - 1.5 / 15)  # an edge belongs to the bin below


def test_single_label_ece_is_top_label_on_the_softmax_and_nll_brier_equal_scikit_learn():
    probs = np.array([[0.95, 0.03, 0.02], [0.05, 0.95, 0.0 + 1e-9], [0.2, 0.55, 0.25], [0.1, 0.35, 0.55],
                      [0.25, 0.5, 0.25]])
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.array([0, 2, 1, 2, 0])
    c = calibration(labels, np.log(probs), "single-label")
    top = probs.max(axis=1)  # 0.95, 0.95, 0.55, 0.55, 0.5: correct 1, 0, 1, 1, 0
    want = 2 / 5 * abs(0.5 - top[:2].mean()) + 2 / 5 * abs(1 - top[2:4].mean()) + 1 / 5 * top[4]
    assert c["ece"] == pytest.approx(want)
    assert c["nll"] == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]))
    assert c["brier"] == pytest.approx(brier_score_loss(labels, probs, labels=[0, 1, 2]))  # summed over classes


def test_multilabel_ece_is_per_class_and_macro_and_ignored_labels_count_nowhere():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 2
    labels = (rng.random((200, 3)) < sigmoid(logits)).astype(int)
    labels[:10, 1] = -1
    c = calibration(labels, logits, "multi-label")
    p = sigmoid(logits)
    per_class = [ece(p[labels[:, k] >= 0, k], labels[labels[:, k] >= 0, k]) for k in range(3)]
    assert c["ece_per_class"] == pytest.approx(per_class) and c["ece"] == pytest.approx(np.mean(per_class))
    keep = labels >= 0
    assert c["nll"] == pytest.approx(log_loss(labels[keep], p[keep]))
    assert c["brier"] == pytest.approx(brier_score_loss(labels[keep], p[keep]))


@pytest.mark.parametrize("task", ["single-label", "multi-label"])
@pytest.mark.parametrize("seed,scale", [(0, 0.3), (1, 1.0), (2, 4.0), (3, 10.0)])
def test_temperature_scaling_never_raises_val_nll_and_undoes_overconfidence(task, seed, scale):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(300, 4))  # the labels are drawn from these logits: T = scale calibrates
    if task == "single-label":
        labels = np.array([rng.choice(4, p=row) for row in softmax(truth)])
    else:
        labels = (rng.random(truth.shape) < sigmoid(truth)).astype(int)
    logits = truth * scale
    t = fit_temperature(labels, logits, task)
    assert t.shape == ((1,) if task == "single-label" else (4,))
    before, after = calibration(labels, logits, task)["nll"], calibration(labels, logits / t, task)["nll"]
    assert after <= before
    if scale >= 4:
        assert after < before - 0.05 and (t > 2).all()


def test_the_report_has_calibration_numbers_and_the_reliability_diagram_and_calibrates_on_request(tmp_path, capsys):
    from test_multilabel_report import ml_run

    run, preds = ml_run(tmp_path, skill=4.0)
    logged = json.loads((run / "summary.json").read_text())
    _, labels, logits = preds["test"]
    assert logged["calibration"]["test"]["nll"] == pytest.approx(log_loss(labels.ravel(), sigmoid(logits).ravel()))
    assert eval_main(["report", str(run), "--resamples", "5", "--calibrate", "temperature"]) == 0
    s = json.loads((run / "report" / "summary.json").read_text())
    t = s["calibration"]["temperature"]
    assert t["val_nll_after"] <= t["val_nll_before"] and len(t["t"]) == 6
    assert s["calibration"]["test"]["nll"] == pytest.approx(logged["calibration"]["test"]["nll"])
    assert s["calibration"]["test"]["ece_per_class"] == pytest.approx(logged["calibration"]["test"]["ece_per_class"])
    assert t["test_after"]["nll"] == pytest.approx(log_loss(labels.ravel(), sigmoid(logits / np.array(t["t"])).ravel()))
    text = (run / "report" / "report.md").read_text()
    assert "## Calibration" in text and "test, temperature-scaled" in text and "ECE (expected calibration" in text
    assert (run / "report" / "reliability.png").read_bytes().startswith(b"\x89PNG")
