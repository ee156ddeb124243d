"""A run's TensorBoard events (RUN/tensorboard): per-epoch numbers under grouped tags, the training loss every
``STEP_LOSS_EVERY`` steps, and the run's hyperparameters with its final numbers (TensorBoard's HParams table).

Optional: without the tensorboard package, or with ``--no-tensorboard``, nothing is written.
"""
import logging
from pathlib import Path

log = logging.getLogger(__name__)

STEP_LOSS_EVERY = 50  # steps; each point is the mean loss of the images since the last one (rank 0's)
GROUPS = {"lr": "opt/lr", "skipped_steps": "opt/skipped_steps", "images_per_s": "speed/images_per_s",
          "seconds": "speed/seconds_per_epoch"}
# config fields that cannot change a result (RESUMABLE_CHANGES) and paths are not hyperparameters
NOT_HPARAMS = ("resume", "workers", "checkpoint_minutes", "tensorboard", "compile", "device", "shards", "out",
               "init_from", "config")


def tag(key: str) -> str:
    """metrics.csv's column -> its TensorBoard tag: train_loss -> loss/train, val_bacc -> metric/val_bacc."""
    if key in GROUPS:
        return GROUPS[key]
    split, _, name = key.partition("_")
    return f"loss/{split}" if name == "loss" else f"metric/{key}"


def hparams(config: dict) -> dict:
    """The config's settings as TensorBoard takes them (numbers, strings, booleans; None as 'none'; a mapping such
    as --loss-param as one entry per key, ``loss_param.gamma``)."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict) and k not in NOT_HPARAMS:
            out.update(hparams({f"{k}.{name}": x for name, x in v.items()}))
        elif k not in NOT_HPARAMS and (v is None or isinstance(v, (bool, int, float, str))):
            out[k] = "none" if v is None else v
    return out


class Events:
    """Opened on first use; every method does nothing when the events are off."""

    def __init__(self, folder: Path, on: bool):
        self.folder, self.on, self._writer, self.every = Path(folder), on, None, STEP_LOSS_EVERY

    def _open(self):
        if self.on and self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: no events written (pip install tensorboard)")
                self.on = False
                return None
            self._writer = SummaryWriter(str(self.folder))
        return self._writer

    def epoch(self, row: dict) -> None:
        """One row of metrics.csv, at its epoch."""
        if (w := self._open()) is not None:
            for key, value in row.items():
                if key != "epoch":
                    w.add_scalar(tag(key), value, row["epoch"])
            w.flush()

    def step_loss(self, value: float, step: int) -> None:
        if (w := self._open()) is not None:
            w.add_scalar("loss/train_step", value, step)

    def finish(self, config: dict, final: dict) -> None:
        """The hyperparameters and the run's final numbers, one row of the HParams table."""
        if (w := self._open()) is not None:
            w.add_hparams(hparams(config), {f"final/{k}": v for k, v in final.items()}, run_name=".")
            w.close()
