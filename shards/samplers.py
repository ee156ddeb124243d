"""Sample order as a pure function of (seed, epoch), in the manner of ffcv's sample_order(epoch).

- ``instance``: a permutation of the split (each image once per epoch).
- ``class-balanced``: every draw picks a class uniformly, then an image of it
  (with replacement): the class-balanced sampling of decoupling (Kang et al.,
  arXiv 1910.09217) and of Balanced-MixUp's second stream (arXiv 2109.09850).
  On multi-hot labels (N, C) it is class-aware sampling (Shen et al., ECCV 2016,
  "Relay Backpropagation"): a class, then an image that has it among its findings.
- ``sqrt``: class probability proportional to sqrt(n_c) (square-root sampling,
  Mahajan et al., arXiv 1805.00932).

Because the order is recomputed from (seed, epoch), a run resumes at any
position by slicing it, and ``world_size`` ranks take equal, disjoint slices.
"""
import numpy as np

# exponent q in p_c ~ n_c^q for the class-driven samplers
_CLASS_POWER = {"class-balanced": 0.0, "sqrt": 0.5}
SAMPLERS = ("instance", *_CLASS_POWER)


def _by_class(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the images of each class one class after another, classes ascending; the number of each), classes
    without images left out. Class indices (N,) or multi-hot (N, C), where an image is in each of its classes."""
    if labels.ndim == 1:
        return np.argsort(labels, kind="stable"), np.unique(labels, return_counts=True)[1]
    classes, members = np.nonzero(labels.T > 0)  # by class, then by image (an ignored label, -1, is not one)
    counts = np.bincount(classes, minlength=labels.shape[1])
    return members, counts[counts > 0]


def _class_driven(labels: np.ndarray, q: float, n: int, rng: np.random.Generator) -> np.ndarray:
    members, counts = _by_class(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    p = counts.astype(np.float64) ** q
    drawn = rng.choice(len(counts), size=n, p=p / p.sum())
    within = (rng.random(n) * counts[drawn]).astype(np.int64)
    return members[starts[drawn] + within]


def sample_order(sampler: str, labels, seed: int, epoch: int, num_samples: int | None = None,
                 rank: int = 0, world_size: int = 1, stream: int = 0) -> np.ndarray:
    """Indices into ``labels`` (class indices, or multi-hot rows) for one epoch, this rank's slice.

    ``num_samples`` (default: len(labels)) is rounded up to a multiple of
    ``world_size`` by wrapping around, so every rank gets the same length.
    ``stream`` gives independent orders for the same (seed, epoch), such as
    Balanced-MixUp's second, class-balanced batch.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; one of {', '.join(SAMPLERS)}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    labels = np.asarray(labels)
    n = len(labels) if num_samples is None else num_samples
    rng = np.random.default_rng([seed, epoch, stream])
    if sampler == "instance":
        reps = -(-n // len(labels))
        order = np.concatenate([rng.permutation(len(labels)) for _ in range(reps)])[:n]
    else:
        order = _class_driven(labels, _CLASS_POWER[sampler], n, rng)
    total = -(-n // world_size) * world_size
    order = np.resize(order, total)  # wraps around to pad
    return order[rank::world_size]
