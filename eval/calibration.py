"""How far a run's probabilities are from the frequencies they claim: expected calibration error (ECE), negative
log-likelihood (NLL) and Brier score, from labels and logits.

ECE uses 15 equal-width confidence bins (b/15, (b+1)/15]: the image-weighted mean gap between the mean confidence
of a bin and the accuracy in it (Guo et al. 2017). Single-label: top-label (confidence = the top softmax
probability, correct = the top class is the label). Multi-label: per class on each class's sigmoid (its
ignored entries, label -1, left out) and their macro mean. NLL: the mean cross-entropy (binary cross-entropy
over every counted image and class for multi-label); Brier: the mean squared distance of the probabilities
from the one-hot label (summed over classes per image), or of each sigmoid from its 0/1 label.
"""
import numpy as np

from .tasks import TASKS, binary_cross_entropy, cross_entropy

BINS = 15


def reliability(confidence, correct, bins: int = BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: image count, mean confidence and accuracy (NaN in an empty bin)."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / counts
        acc = np.bincount(which, correct, bins) / counts
    return counts, conf, acc


def ece(confidence, correct, bins: int = BINS) -> float:
    """Expected calibration error of these confidences and outcomes; NaN with no images."""
    counts, conf, acc = reliability(confidence, correct, bins)
    if not counts.sum():
        return float("nan")
    full = counts > 0
    return float(np.sum(counts[full] / counts.sum() * np.abs(acc[full] - conf[full])))


def top_label(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) of each image's top class."""
    probs = np.asarray(probs)
    return probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels)


def counted(labels, values, c: int):
    """Class c's labels and values without the ignored entries (label -1)."""
    labels, values = np.asarray(labels), np.asarray(values)
    keep = labels[:, c] >= 0
    return labels[keep, c], values[keep, c]


def pooled(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, label) of every counted image and class: the multi-label reliability diagram's points."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    keep = labels >= 0
    return probs[keep], labels[keep] > 0


def calibration(labels, logits, task: str) -> dict:
    """{"ece", "nll", "brier", "bins"} (multi-label: "ece" is the macro mean, "ece_per_class" each class's)."""
    labels, logits = np.asarray(labels), np.asarray(logits, dtype=np.float64)
    probs = TASKS[task].scores(logits)
    if task == "single-label":
        onehot = np.eye(logits.shape[1])[labels]
        return {"ece": ece(*top_label(labels, probs)), "nll": cross_entropy(labels, logits),
                "brier": float(np.mean(np.sum((probs - onehot) ** 2, axis=1))), "bins": BINS}
    per_class = [ece(p, y > 0) for y, p in (counted(labels, probs, c) for c in range(labels.shape[1]))]
    keep = labels >= 0
    return {"ece": float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan"),
            "ece_per_class": per_class, "nll": binary_cross_entropy(labels[keep], logits[keep]),
            "brier": float(np.mean((probs[keep] - labels[keep]) ** 2)), "bins": BINS}
