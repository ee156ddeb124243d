import json

import numpy as np
import pytest
from sklearn import metrics as sk

from eval import metrics as m

RNG = np.random.default_rng(0)
C = 6


def random_case(n=300):
    y = RNG.integers(0, C, n)
    pred = np.where(RNG.random(n) < 0.5, y, RNG.integers(0, C, n))
    logits = RNG.normal(size=(n, C)) + 2 * np.eye(C)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, pred, probs


@pytest.mark.parametrize("seed", range(3))
def test_single_label_metrics_equal_scikit_learn(seed):
    y, pred, probs = random_case()
    assert np.isclose(m.balanced_accuracy(y, pred, C), sk.balanced_accuracy_score(y, pred))
    assert np.isclose(m.macro_f1(y, pred, C), sk.f1_score(y, pred, average="macro"))
    assert np.isclose(m.mcc(y, pred, C), sk.matthews_corrcoef(y, pred))
    assert np.isclose(m.macro_auroc(y, probs), sk.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert np.array_equal(m.confusion_matrix(y, pred, C), sk.confusion_matrix(y, pred, labels=range(C)))
    assert np.allclose(m.per_class_accuracy(y, pred, C), sk.recall_score(y, pred, average=None))


def test_auroc_handles_tied_scores_like_scikit_learn():
    y = np.array([0, 1, 1, 0, 1, 0, 1])
    s = np.array([0.2, 0.2, 0.7, 0.7, 0.9, 0.1, 0.2])
    assert np.isclose(m.binary_auroc(y == 1, s), sk.roc_auc_score(y, s))


def test_multilabel_map_and_auroc_equal_scikit_learn():
    labels = (RNG.random((200, C)) < 0.2).astype(int)
    scores = labels * 0.8 + RNG.random((200, C))
    scores[:20, 0] = 0.5  # ties
    assert np.isclose(m.multilabel_map(labels, scores), sk.average_precision_score(labels, scores, average="macro"))
    assert np.isclose(m.multilabel_auroc(labels, scores), sk.roc_auc_score(labels, scores, average="macro"))


def test_precision_recall_points_and_per_class_ap_and_auroc_equal_scikit_learn():
    labels = (RNG.random((150, C)) < 0.3).astype(int)
    scores = np.round(labels * 0.5 + RNG.random((150, C)), 1)  # rounded: many ties
    precision, recall = m.precision_recall(labels[:, 0], scores[:, 0])
    sk_precision, sk_recall, _ = sk.precision_recall_curve(labels[:, 0], scores[:, 0])
    # scikit-learn: lowest threshold first, and a last point (recall 0, precision 1) of no threshold
    assert np.allclose(precision, sk_precision[:-1][::-1]) and np.allclose(recall, sk_recall[:-1][::-1])
    assert np.allclose(m.per_class_ap(labels, scores), sk.average_precision_score(labels, scores, average=None))
    assert np.allclose(m.per_class_auroc(labels, scores), sk.roc_auc_score(labels, scores, average=None))
    assert [len(a) for a in m.precision_recall(np.zeros(5), np.arange(5))] == [0, 0]  # no positive: no curve


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_f1_at_one_or_per_class_thresholds_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random((300, 6)) < [0.5, 0.3, 0.1, 0.05, 0.02, 0.0]).astype(int)
    scores = np.clip(labels * 0.3 + rng.random((300, 6)) * 0.8, 0, 1)
    thresholds = np.array([0.5, 0.4, 0.6, 0.7, 0.3, 0.9])
    for t in (0.5, thresholds):
        want = sk.f1_score(labels, (scores >= t).astype(int), average="macro", zero_division=0)
        assert np.isclose(m.multilabel_f1(labels, scores, t), want)


def test_tuned_thresholds_give_each_class_its_best_f1_on_the_grid():
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.35, 0.3], [0.3, 0.25], [0.1, 0.8]])
    grid = np.array([0.2, 0.3, 0.33, 0.5])
    # class 0: positives score 0.9 and 0.35, the best negative 0.3: only 0.33 takes both and no negative
    # (F1 1; 0.2 and 0.3 take the 0.3 too: 4/5; 0.5 misses the 0.35: 2/3)
    # class 1: its positive scores 0.25; 0.2 takes all four (F1 2/5), 0.3 and up miss it (0): 0.2 wins
    assert m.tune_thresholds(labels, scores, grid).tolist() == [0.33, 0.2]


def test_a_class_without_validation_positives_keeps_the_threshold_0_5_instead_of_the_lowest_of_the_grid():
    labels = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.3], [0.1, 0.6], [0.6, 0.2]])
    assert m.tune_thresholds(labels, scores).tolist() == [0.11, 0.5]


def test_tuned_thresholds_are_the_grid_values_as_written_not_linspaces_rounding_error():
    # linspace(0.01, 0.99, 99)[47] is 0.48000000000000004; only 0.48 on the grid takes 0.485 and not 0.475
    assert np.linspace(0.01, 0.99, 99)[47] != 0.48
    thresholds = m.tune_thresholds(np.array([[1], [0]]), np.array([[0.485], [0.475]]))
    assert thresholds.tolist() == [0.48] and json.dumps(thresholds.tolist()) == "[0.48]"


def test_group_means_of_the_per_class_ap_average_each_groups_ap_and_leave_an_empty_group_nan():
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    scores = np.random.default_rng(0).random((4, 3))
    ap = [sk.average_precision_score(labels[:, c], scores[:, c]) for c in range(3)]
    out = m.group_means(m.per_class_ap(labels, scores), ["head", "head", "tail"])
    assert np.isclose(out["head"], (ap[0] + ap[1]) / 2) and np.isclose(out["tail"], ap[2])
    assert np.isnan(out["medium"]) and np.isnan(out["avg"])


def test_group_means_are_hand_computed_values():
    groups = ["head", "head", "medium", "tail"]
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    pred = np.array([0, 1, 1, 1, 2, 0, 0, 0])  # per class: 0.5, 1.0, 1/3, 0.0
    got = m.group_accuracy(y, pred, groups)
    assert got["head"] == pytest.approx(0.75) and got["medium"] == pytest.approx(1 / 3) and got["tail"] == 0.0
    assert got["avg"] == pytest.approx((0.75 + 1 / 3 + 0.0) / 3)


def test_an_empty_group_is_nan_never_zero():
    got = m.group_accuracy(np.array([0, 1]), np.array([0, 1]), ["head", "medium", "tail"])
    assert np.isnan(m.per_class_accuracy([0, 1], [0, 1], 3)[2])
    assert np.isnan(got["tail"]) and np.isnan(got["avg"]) and got["head"] == 1.0
    assert np.isnan(m.group_accuracy(np.array([0]), np.array([0]), ["head", "head"])["tail"])


def test_bootstrap_is_seeded_contains_the_point_and_narrows_with_more_data():
    def bacc(y, p):
        return m.balanced_accuracy(y, p, C)

    y, pred, _ = random_case(200)
    a = m.bootstrap_ci(bacc, y, pred, n_boot=300, seed=1)
    assert a == m.bootstrap_ci(bacc, y, pred, n_boot=300, seed=1)
    assert a[1] <= a[0] <= a[2]
    y2, pred2, _ = random_case(5000)
    b = m.bootstrap_ci(bacc, y2, pred2, n_boot=300, seed=1)
    assert (b[2] - b[1]) < (a[2] - a[1]) / 2


def test_bootstrap_by_patient_resamples_whole_patients():
    # two patients: one all right, one all wrong; a resample holds 0, 1 or 2 copies of each
    y = np.zeros(10, int)
    pred = np.array([0] * 5 + [1] * 5)
    patients = np.array([1] * 5 + [2] * 5)
    acc = lambda a, b: float((a == b).mean())
    _, low, high = m.bootstrap_ci(acc, y, pred, n_boot=200, seed=0, clusters=patients)
    assert (low, high) == (0.0, 1.0)


def test_a_vector_metric_gets_the_interval_of_each_entry_as_if_bootstrapped_alone():
    y, pred, _ = random_case(200)
    point, low, high = m.bootstrap_ci(lambda a, b: m.per_class_accuracy(a, b, C), y, pred, n_boot=100, seed=3)
    assert np.array_equal(point, m.per_class_accuracy(y, pred, C)) and low.shape == high.shape == (C,)
    for k in range(C):
        alone = m.bootstrap_ci(lambda a, b: m.per_class_accuracy(a, b, C)[k], y, pred, n_boot=100, seed=3)
        assert (low[k], high[k]) == alone[1:]


def test_ignored_labels_change_neither_ap_auroc_nor_f1():
    """A label of -1 (an uncertain label a CSV spec ignores) is left out of every multi-label metric:
    the metrics equal scikit-learn's on the counted entries, whatever the ignored entries' scores."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    from eval.metrics import multilabel_f1, per_class_ap, per_class_auroc, tune_thresholds

    rng = np.random.default_rng(3)
    labels = (rng.random((60, 3)) < 0.4).astype(np.int64)
    scores = rng.random((60, 3))
    ignored = rng.random((60, 3)) < 0.2
    masked = np.where(ignored, -1, labels)
    other = np.where(ignored, rng.random((60, 3)), scores)
    for c in range(3):
        keep = ~ignored[:, c]
        assert np.isclose(per_class_ap(masked, scores)[c], average_precision_score(labels[keep, c], scores[keep, c]))
        assert np.isclose(per_class_auroc(masked, scores)[c], roc_auc_score(labels[keep, c], scores[keep, c]))
    assert np.array_equal(per_class_ap(masked, scores), per_class_ap(masked, other))
    assert np.array_equal(per_class_auroc(masked, scores), per_class_auroc(masked, other))
    want = np.mean([f1_score(labels[~ignored[:, c], c], scores[~ignored[:, c], c] >= 0.5) for c in range(3)])
    assert np.isclose(multilabel_f1(masked, scores), want)
    assert multilabel_f1(masked, scores) == multilabel_f1(masked, other)
    assert np.array_equal(tune_thresholds(masked, scores), tune_thresholds(masked, other))
