import numpy as np
import torch

from eval.metrics import balanced_accuracy
from train.methods.decoupling import sweep_tau, tau_norm


def test_tau_norm_divides_each_row_by_its_norm_to_the_tau():
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8]])
    assert torch.allclose(tau_norm(w, 0.0), w)
    assert torch.allclose(tau_norm(w, 1.0), torch.tensor([[0.6, 0.8], [0.6, 0.8]]))
    assert torch.allclose(tau_norm(w, 0.5), w / torch.tensor([[5.0 ** 0.5], [1.0]]))


def test_sweep_finds_the_tau_that_undoes_a_norm_bias():
    # class 0's row is 10x longer (a head-class bias); features point equally to both classes
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    feats = torch.tensor(np.where(labels[:, None] == 0, [1.0, 0.0], [0.0, 1.0]) + rng.normal(0, 0.6, (400, 2)),
                         dtype=torch.float32)
    w = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    best, scores = sweep_tau(feats, labels, w, lambda y, p: balanced_accuracy(y, p, 2))
    assert 0.6 <= best <= 1.4 and scores[best] > scores[0.0] + 0.05 and scores[best] >= scores[2.0]

