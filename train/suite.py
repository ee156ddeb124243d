"""python -m train suite: every method and seed into one dir, resumable, then the results table.

Stage-1 methods run first; crt and tau-norm start from the ce run of the same
seed (added when not asked for). A finished run (summary.json) is skipped, an
interrupted one resumes, so rerunning the same command after a preemption
finishes the suite without training anything twice.
"""
import dataclasses
import logging
from pathlib import Path

from eval.table import write_table

from .config import FitConfig
from .distributed import barrier, current
from .fit import fit
from .methods import METHODS, PAPER_METHODS, get_method

log = logging.getLogger(__name__)


def plan(methods: list[str]) -> list[str]:
    """Methods in run order: stage 1 first (ce included when a two-stage method needs it)."""
    for m in methods:
        get_method(m)
    two_stage = [m for m in methods if METHODS[m].stage != "train"]
    first = [m for m in methods if METHODS[m].stage == "train"]
    if two_stage and "ce" not in first:
        first.insert(0, "ce")
    return first + two_stage


def parse_methods(text: str) -> list[str]:
    if text == "all":
        return list(PAPER_METHODS)
    if text == "everything":
        return list(METHODS)
    return [m.strip() for m in text.split(",") if m.strip()]


def run_dir(out: Path, method: str, seed: int) -> Path:
    return Path(out) / f"{method}-seed{seed}"


def suite(base: FitConfig, out: Path, methods: list[str], seeds: list[int], stop=None) -> str:
    """'finished' (table written) or 'interrupted' (rerun to continue)."""
    out = Path(out)
    order = plan(methods)
    for seed in seeds:
        for method in order:
            run = run_dir(out, method, seed)
            if (run / "summary.json").exists():
                log.info("%s: finished, skipped", run.name)
                continue
            init = str(run_dir(out, "ce", seed)) if METHODS[method].stage != "train" else base.init_from
            cfg = dataclasses.replace(base, method=method, seed=seed, out=str(run), init_from=init)
            log.info("suite: %s (seed %d)", method, seed)
            if fit(cfg, stop) == "interrupted":
                return "interrupted"
    if current().main:
        write_table([out], out / "results")
        log.info("results table: %s", out / "results.md")
    barrier()
    return "finished"
