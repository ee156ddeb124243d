"""Progress of long work: a tqdm bar on a terminal, plain periodic log lines otherwise."""
import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "img", every_s: float = 10.0, stream=None):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.done, self.start, self.last = 0, time.monotonic(), time.monotonic()
        stream = stream or sys.stderr
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True) if stream.isatty() else None

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.start, 1e-9)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            self._line()

    def _line(self) -> None:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        log.info("%s: %d/%d %s (%.0f%%), %.1f %s/s, eta %s", self.desc, self.done, self.total, self.unit, pct,
                 rate, self.unit, "?" if eta == float("inf") else time.strftime("%H:%M:%S", time.gmtime(eta)))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
