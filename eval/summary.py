"""The paper's numbers from predictions: balanced-test group accuracies, test mF1 / bAcc / AUROC / MCC."""
import numpy as np

from . import metrics as m
from .tasks import softmax


def paper_metrics(bt_labels, bt_logits, test_labels, test_logits, groups, class_names) -> dict:
    c = len(class_names)
    bt_pred = np.asarray(bt_logits).argmax(1)
    test_pred = np.asarray(test_logits).argmax(1)
    per_class = m.per_class_accuracy(bt_labels, bt_pred, c)
    return {
        "balanced_test": {**m.group_accuracy(bt_labels, bt_pred, groups),
                          "per_class": dict(zip(class_names, per_class.tolist()))},
        "test": {"mf1": m.macro_f1(test_labels, test_pred, c),
                 "bacc": m.balanced_accuracy(test_labels, test_pred, c),
                 "auroc": m.macro_auroc(test_labels, softmax(np.asarray(test_logits, dtype=np.float64))),
                 "mcc": m.mcc(test_labels, test_pred, c)},
        "groups": dict(zip(class_names, groups)),
    }
