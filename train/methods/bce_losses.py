"""Multi-label (sigmoid) losses: one binary problem per class, called as ``loss(logits, target)``.

``target`` is a float multi-hot (N, C) tensor (soft values in [0, 1] work too) or the mixing triple of
``train.methods.losses``, so MixUp on multi-hot targets needs no separate code. Every loss here is the mean over
images AND classes (PyTorch's BCE default), so a learning rate carries over from one to another. Class
weights w_c (``rw`` / ``cb`` of ``train.methods.weighting`` on the positive counts, replaced under DRW) multiply
the positive term only, as BCE's ``pos_weight``. A target of -1 (``shards.index.IGNORED``, an uncertain label a
CSV spec ignores) adds nothing to the sum, whatever its logit; the mean still divides by every entry.
Below p = s(z), s the sigmoid, y the target.

- ``bce``: binary cross-entropy, -[w y log p + (1 - y) log(1 - p)].
- ``focal-bce``: sigmoid focal loss (Lin et al., arXiv 1708.02002), gamma 2, no alpha:
  -[w y (1 - p)^g log p + (1 - y) p^g log(1 - p)].
- ``asl``: asymmetric loss (Ridnik et al., arXiv 2009.14119), gamma_pos 0, gamma_neg 4, clip 0.05:
  p_m = max(p - clip, 0); -[w y (1 - p)^gp log p + (1 - y) p_m^gn log(1 - p_m)], logs clamped at 1e-8.
- ``distribution-balanced``: distribution-balanced loss (Wu et al., arXiv 2007.09654), the authors' code:
  re-balanced weight r_ik = (1/n_k) / sum_j y_ij / n_j, smoothed r^ = alpha + s(beta (r - mu)), and
  negative-tolerant regularisation on z' = z + kappa b_k / lambda, b_k = log(pi_k / (1 - pi_k)):
  r^ [w y log(1 + e^-z') + (1 - y) / lambda log(1 + e^(lambda z'))]. An image without any positive
  label is never drawn by class-aware sampling, so r is undefined there: its r^ is 1. ``gamma`` > 0 adds
  the focal factors of DB-Focal (the authors' configs; their extra loss scale of 2 is left out).
- ``logit-adjusted-bce``: BCE of z + tau log(pi_c / (1 - pi_c)), the sigmoid form of logit adjustment
  (Menon et al., arXiv 2007.07314), tau 1; predictions use the raw logits.

pi_c = n_c / N: n_c the positive count of class c, N the number of training images.
"""
import numpy as np
import torch
import torch.nn.functional as F

from .class_loss import ClassLoss

EPS = 1e-8  # ASL's clamp of the probabilities inside the logs, as in the authors' code


def class_priors(counts, num_images) -> np.ndarray:
    """pi_c = n_c / N; each class needs positives and negatives among the training images."""
    if num_images is None:
        raise ValueError("class priors need num_images, the number of training images")
    n = np.asarray(counts, dtype=np.float64)
    if (n <= 0).any() or (n >= num_images).any():
        raise ValueError(f"every class needs 0 < positives < {num_images} training images for class priors, "
                         f"got {n.astype(int).tolist()}")
    return n / num_images


def focal_terms(z: torch.Tensor, gamma: float):
    """-log p times (1 - p)^gamma and -log(1 - p) times p^gamma, per element (gamma 0: BCE's two terms)."""
    pos, neg = -F.logsigmoid(z), -F.logsigmoid(-z)
    if gamma:
        p = torch.sigmoid(z)
        pos, neg = pos * (1 - p).pow(gamma), neg * p.pow(gamma)
    return pos, neg


class BinaryLoss(ClassLoss):
    """Base: the mean over images and classes of w_c y pos + (1 - y) neg, with ``terms`` giving pos and neg."""

    def loss(self, logits, target):
        if target.shape != logits.shape:
            raise ValueError(f"a multi-label loss takes multi-hot float targets shaped like the logits "
                             f"{tuple(logits.shape)}, got {tuple(target.shape)}")
        y = target.float()
        counted = y >= 0  # a target of -1 is an ignored (uncertain) label: it adds 0, whatever its logit
        y = y.clamp(min=0)
        pos, neg = self.terms(logits, y)
        return torch.where(counted, self.weights * y * pos + (1 - y) * neg, 0.0).mean()

    def terms(self, logits: torch.Tensor, y: torch.Tensor):
        raise NotImplementedError


class FocalBCE(BinaryLoss):
    """Sigmoid focal loss; gamma 0 is BCE."""

    def __init__(self, num_classes, weights=None, gamma: float = 2.0):
        super().__init__(num_classes, weights)
        self.gamma = gamma

    def terms(self, logits, y):
        return focal_terms(logits, self.gamma)


class AsymmetricLoss(BinaryLoss):
    def __init__(self, num_classes, weights=None, gamma_pos: float = 0.0, gamma_neg: float = 4.0,
                 clip: float = 0.05):
        super().__init__(num_classes, weights)
        self.gamma_pos, self.gamma_neg, self.clip = gamma_pos, gamma_neg, clip

    def terms(self, logits, y):
        p = torch.sigmoid(logits)
        shifted = (p - self.clip).clamp(min=0)
        pos = -torch.log(p.clamp(min=EPS)) * (1 - p).pow(self.gamma_pos)
        neg = -torch.log((1 - shifted).clamp(min=EPS)) * shifted.pow(self.gamma_neg)
        return pos, neg


class DistributionBalanced(BinaryLoss):
    def __init__(self, num_classes, weights=None, counts=None, num_images=None, alpha: float = 0.1,
                 beta: float = 10.0, mu: float = 0.2, neg_scale: float = 5.0, kappa: float = 0.05,
                 gamma: float = 0.0):
        super().__init__(num_classes, weights)
        prior = class_priors(counts, num_images)
        self.register_buffer("freq_inv", torch.as_tensor(1.0 / np.asarray(counts, dtype=np.float64),
                                                         dtype=torch.float32))
        # the authors' init bias: z' starts at the prior's logit (over lambda), so the many negatives of a
        # rare class do not all push its logit down from the first step
        self.register_buffer("shift", torch.as_tensor(kappa * np.log(prior / (1 - prior)) / neg_scale,
                                                      dtype=torch.float32))
        self.alpha, self.beta, self.mu, self.neg_scale, self.gamma = alpha, beta, mu, neg_scale, gamma

    def rebalance(self, y: torch.Tensor) -> torch.Tensor:
        """r^ per image and class: class-level over instance-level sampling probability, smoothed."""
        repeat = (y * self.freq_inv).sum(1, keepdim=True)
        r = self.freq_inv / repeat.clamp(min=torch.finfo(torch.float32).tiny)
        return torch.where(repeat > 0, self.alpha + torch.sigmoid(self.beta * (r - self.mu)), torch.ones_like(r))

    def terms(self, logits, y):
        z = logits + self.shift
        pos, _ = focal_terms(z, self.gamma)
        _, neg = focal_terms(self.neg_scale * z, self.gamma)
        r_hat = self.rebalance(y)
        return r_hat * pos, r_hat * neg / self.neg_scale


class LogitAdjustedBCE(FocalBCE):
    def __init__(self, num_classes, weights=None, counts=None, num_images=None, tau: float = 1.0):
        super().__init__(num_classes, weights, gamma=0.0)
        prior = class_priors(counts, num_images)
        self.register_buffer("shift", torch.as_tensor(tau * np.log(prior / (1 - prior)), dtype=torch.float32))

    def terms(self, logits, y):
        return super().terms(logits + self.shift, y)
