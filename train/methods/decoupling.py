"""Decoupled classifier adjustment (Kang et al., arXiv 1910.09217).

- tau-norm: each classifier row W_i becomes W_i / ||W_i||^tau; tau 0 is the
  original classifier, tau 1 fully normalised. As in that paper the bias is
  dropped (its classifiers have none, so a biased head is evaluated without it).
  The benchmark's code multiplied by ||W_i||^4 instead; this divides.
- A sweep picks tau on a validation set by a metric (balanced accuracy).
"""
import numpy as np
import torch
from torch import nn


def tau_norm(weight: torch.Tensor, tau: float) -> torch.Tensor:
    norms = weight.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return weight / norms.pow(tau)


def tau_logits(features: torch.Tensor, weight: torch.Tensor, tau: float) -> torch.Tensor:
    return features @ tau_norm(weight, tau).t()


def sweep_tau(features: torch.Tensor, labels: np.ndarray, weight: torch.Tensor, metric,
              taus=np.round(np.arange(0.0, 2.01, 0.1), 2)) -> tuple[float, dict[float, float]]:
    """(best tau, {tau: metric}) on a validation set; ties go to the smaller tau."""
    scores = {}
    for tau in taus:
        logits = tau_logits(features, weight, float(tau)).detach().cpu().numpy()
        scores[float(tau)] = float(metric(labels, logits.argmax(1)))
    best = max(scores, key=lambda t: (scores[t], -t))
    return best, scores


def tau_norm_head(linear: nn.Linear, tau: float) -> nn.Linear:
    """The classifier tau-norm evaluates, as a module to save and load: rows W_i / ||W_i||^tau, no bias."""
    head = nn.Linear(linear.in_features, linear.out_features, bias=False).to(linear.weight.device)
    with torch.no_grad():
        head.weight.copy_(tau_norm(linear.weight.detach().float(), tau))
    return head
