"""The learning rate of each step: warm-up, then constant, cosine or step decay; a pure function of the global
step, so a resumed run takes the schedule up exactly where it stopped.

The trainer multiplies it with ``--lr``, the parameter group's factor (``--head-lr-factor``) and DRW's factor
from ``--drw-epoch`` on: DRW's drop composes with the schedule (cosine with DRW: the cosine's value, times 0.1
once DRW switches on).
"""
import math

STEP_MILESTONES = (0.5, 0.75)  # --schedule step: x0.1 at these fractions of --epochs (the classical ResNet recipe)


def lr_factor(schedule: str, step: int, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0) -> float:
    """The factor of --lr at global step ``step`` (0-based, counted over epochs of ``steps_per_epoch``).

    Warm-up rises linearly over round(warmup_epochs * steps_per_epoch) steps, reaching 1 at its last one;
    cosine then falls from 1 to 0 at the last step of --epochs; step is x0.1 from each milestone epoch."""
    warm = round(warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    if schedule == "cosine":
        total = epochs * steps_per_epoch
        progress = (step - warm) / max(1, total - warm - 1)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if schedule == "step":
        passed = sum(step >= int(m * epochs) * steps_per_epoch for m in STEP_MILESTONES)
        return 0.1 ** passed
    return 1.0
