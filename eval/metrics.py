"""The paper's metrics and more, numpy only, from labels and scores.

Single-label: per-class accuracy (recall), balanced accuracy, head / medium /
tail mean accuracy and their average ("Avg" in arXiv 2208.13365), macro-F1,
macro one-vs-rest AUROC, MCC, confusion matrix. Multi-label (the CXR-LT challenges'): macro
average precision (mAP) overall and per head / medium / tail, macro AUROC, macro F1 at 0.5 or at
per-class thresholds tuned on validation. Any of them with a seeded percentile bootstrap
interval, resampling images or whole patients. A class or group with nothing to
average gives NaN, never 0.
"""
import numpy as np

GROUPS = ("head", "medium", "tail")


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """rows: true class, columns: predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def per_class_accuracy(y_true, y_pred, num_classes: int) -> np.ndarray:
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def nanmean(a) -> float:
    """The mean of the entries that are not NaN; NaN (and no warning) when none is."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def balanced_accuracy(y_true, y_pred, num_classes: int) -> float:
    return nanmean(per_class_accuracy(y_true, y_pred, num_classes))


def group_accuracy(y_true, y_pred, groups: list[str]) -> dict[str, float]:
    """Mean per-class accuracy within head, medium and tail, and "avg", the mean of the three."""
    return group_means(per_class_accuracy(y_true, y_pred, len(groups)), groups)


def group_means(per_class, groups: list[str]) -> dict[str, float]:
    """The mean of a per-class metric within head, medium and tail (NaN classes left out), and "avg", the
    mean of the three."""
    values, g = np.asarray(per_class, dtype=np.float64), np.asarray(groups)
    out = {name: nanmean(values[g == name]) for name in GROUPS}
    out["avg"] = float(np.mean([out[name] for name in GROUPS]))
    return out


def macro_f1(y_true, y_pred, num_classes: int) -> float:
    """Mean F1 over the classes that occur in y_true or y_pred (as scikit-learn); F1 0 where undefined."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(num_classes), where=present)
    return float(f1[present].mean()) if present.any() else float("nan")


def mcc(y_true, y_pred, num_classes: int) -> float:
    """Matthews correlation coefficient, multi-class (Gorodkin's R_K)."""
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    t, p, c, s = cm.sum(axis=1), cm.sum(axis=0), np.trace(cm), cm.sum()
    denom = np.sqrt(s * s - p @ p) * np.sqrt(s * s - t @ t)
    return float((c * s - t @ p) / denom) if denom > 0 else 0.0


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def binary_auroc(positive, score) -> float:
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(y_true, scores) -> float:
    """One-vs-rest AUROC per class (score column c against "is class c"), averaged over defined classes."""
    scores = np.asarray(scores)
    y_true = np.asarray(y_true)
    return nanmean([binary_auroc(y_true == c, scores[:, c]) for c in range(scores.shape[1])])


def precision_recall(positive, score) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score taken as the threshold, from the highest score down
    (recall rising); a class with no positive has no curve (empty arrays)."""
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        return np.empty(0), np.empty(0)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    s, hit = np.asarray(score)[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct threshold
    tp = np.cumsum(hit)[last]
    return tp / (last + 1), tp / positive.sum()


def average_precision(positive, score) -> float:
    """Area under the precision-recall step curve, as scikit-learn defines it; NaN for a class with no
    positive (scikit-learn warns and gives 0 there, which would count an undefined class as a failure)."""
    precision, recall = precision_recall(positive, score)
    if not len(recall):
        return float("nan")
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _counted(labels, scores, c: int):
    """Class c's labels and scores without the ignored entries (label -1, an uncertain label a CSV spec ignores)."""
    keep = labels[:, c] >= 0
    return labels[keep, c], scores[keep, c]


def per_class_ap(labels, scores) -> np.ndarray:
    labels, scores = np.asarray(labels), np.asarray(scores)
    return np.array([average_precision(*_counted(labels, scores, c)) for c in range(labels.shape[1])])


def per_class_auroc(labels, scores) -> np.ndarray:
    labels, scores = np.asarray(labels), np.asarray(scores)
    return np.array([binary_auroc(*_counted(labels, scores, c)) for c in range(labels.shape[1])])


def multilabel_map(labels, scores) -> float:
    """Macro AP over the classes with a positive."""
    return nanmean(per_class_ap(labels, scores))


def multilabel_auroc(labels, scores) -> float:
    """Macro AUROC over the classes with a positive and a negative."""
    return nanmean(per_class_auroc(labels, scores))


def multilabel_f1(labels, scores, thresholds=0.5) -> float:
    """Macro F1 of ``scores >= thresholds`` (one threshold, or one per class) over every class; a class
    with no positive and none predicted counts 0, as scikit-learn's ``f1_score(zero_division=0)``. Ignored
    entries (label -1) count neither as positives nor as predictions."""
    labels = np.asarray(labels)
    predicted = (np.asarray(scores) >= np.asarray(thresholds)) & (labels >= 0)
    labels = labels > 0
    tp = (labels & predicted).sum(axis=0)
    denom = labels.sum(axis=0) + predicted.sum(axis=0)
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)))


def tune_thresholds(labels, scores, grid=np.linspace(0.01, 0.99, 99), default: float = 0.5) -> np.ndarray:
    """Per class, the threshold of ``grid`` with the best F1 on these (validation) labels; the lowest on ties.
    A class with no positive here keeps ``default``: every threshold scores F1 0 on it, and the lowest would
    call nearly every image positive. The grid is rounded to 6 decimals first, so a threshold reads as the
    0.48 of the grid, not linspace's 0.48000000000000004, in summaries and tables."""
    labels, scores, grid = np.asarray(labels), np.asarray(scores), np.round(np.asarray(grid, float), 6)
    best = np.full(labels.shape[1], default)
    for c in np.flatnonzero((labels > 0).any(axis=0)):
        f1 = [multilabel_f1(labels[:, [c]], scores[:, [c]], t) for t in grid]
        best[c] = grid[int(np.argmax(f1))]
    return best


def bootstrap_ci(metric, *arrays, n_boot: int = 1000, level: float = 0.95, seed: int = 0, clusters=None):
    """(point, low, high): the metric, and its percentile interval over resamples of the rows.

    ``clusters`` (for example patient ids) resamples whole clusters, keeping an image's
    neighbours together. Resamples on which the metric is NaN are dropped. A metric that
    returns a vector (per-class accuracy) gets an interval per entry, as arrays.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    point = metric(*arrays)
    if clusters is not None:
        ids, inverse = np.unique(np.asarray(clusters), return_inverse=True)
        members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    stats = []
    for _ in range(n_boot):
        if clusters is None:
            rows = rng.integers(0, n, n)
        else:
            rows = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        stats.append(metric(*(a[rows] for a in arrays)))
    stats = np.asarray(stats, dtype=np.float64).reshape(n_boot, np.size(point))
    tail = (1 - level) / 2 * 100
    bounds = np.full((2, stats.shape[1]), np.nan)
    for k, column in enumerate(stats.T):
        finite = column[np.isfinite(column)]
        if len(finite):
            bounds[:, k] = np.percentile(finite, [tail, 100 - tail])
    if np.ndim(point) == 0:
        return point, float(bounds[0, 0]), float(bounds[1, 0])
    return point, bounds[0], bounds[1]
