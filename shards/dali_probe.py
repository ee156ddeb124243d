"""python -m shards.dali_probe --shards DIR: what the DALI input path of a training run costs the host.

In a fresh process (each of ``--repeat`` runs is one): the time from the loader's construction to the first
training batch, then ``--steps`` training batches and one pass over the validation split, while a thread
samples the resident memory of this process and all its descendants (DALI's source workers) every 10 ms,
from /proc (Linux). RSS counts a library shared by several processes once per process, as `top` does; PSS
splits shared pages between them. The defaults are those of ``train fit`` (batch 256, 256 px, 4 workers).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, their children and so on (Linux /proc)."""
    children = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; (0, 0) when it has gone."""
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        pss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                   if line.startswith("Pss:")) * 1024
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return 0, 0
    return rss, pss


class TreeMemory(threading.Thread):
    """Peak RSS and PSS summed over this process and its descendants, and the most processes seen."""

    def __init__(self, every: float = 0.01):
        super().__init__(daemon=True)
        self.every, self.peak_rss, self.peak_pss, self.processes = every, 0, 0, 1
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(self.every):
            tree = [os.getpid(), *descendants(os.getpid())]
            rss, pss = map(sum, zip(*(memory(p) for p in tree)))
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.processes = max(self.processes, len(tree))

    def stop(self):
        self._done.set()
        self.join()


def probe(a) -> dict:
    """One run in this process: figures as a dict."""
    watch = TreeMemory()
    watch.start()
    start = time.perf_counter()
    import torch  # the import is part of what a run pays before its first batch

    from .augment import AugmentSpec
    from .dali import DaliLoader
    from .reader import open_shards

    loader = DaliLoader(ss=open_shards(a.shards), sampler="instance", augment=AugmentSpec(a.image_size),
                        batch_size=a.batch_size, seed=0, workers=a.workers, device=torch.device("cpu"),
                        channels_last=True, second_stream="class-balanced" if a.second_stream else None)
    batches = loader.train(0, 0)
    next(batches)
    first = time.perf_counter() - start
    for _, _ in zip(range(a.steps), batches):
        pass
    for _ in loader.evaluate("val"):
        pass
    left = len(descendants(os.getpid()))
    watch.stop()
    return {"first_batch_s": round(first, 2), "peak_rss_mb": round(watch.peak_rss / 2**20),
            "peak_pss_mb": round(watch.peak_pss / 2**20), "processes": watch.processes,
            "children_after_eval": left}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m shards.dali_probe", description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=Path, required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20, help="training batches after the first")
    p.add_argument("--second-stream", action="store_true", help="Balanced-MixUp's class-balanced second stream")
    p.add_argument("--repeat", type=int, default=3, help="fresh processes, one run each; the best is marked")
    a = p.parse_args(argv)
    if a.repeat == 1:
        print(json.dumps(probe(a)))
        return
    base = [sys.executable, "-m", "shards.dali_probe", *(argv if argv is not None else sys.argv[1:])]
    runs = [json.loads(subprocess.run(base + ["--repeat", "1"], check=True, capture_output=True,
                                      text=True).stdout.splitlines()[-1]) for _ in range(a.repeat)]
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"# {cpu}, {os.cpu_count()} CPUs; workers {a.workers}, batch {a.batch_size}, "
          f"{a.image_size} px, {a.steps + 1} training batches then the val split")
    for run in runs:
        print(json.dumps(run))
    best = {k: min(r[k] for r in runs) for k in ("first_batch_s", "peak_rss_mb", "peak_pss_mb")}
    print("best " + json.dumps(best))


if __name__ == "__main__":
    main()
