"""python -m train suite: every method and seed into one dir, resumable, then the results table.

Stage-1 methods run first; two-stage methods (crt, tau-norm; crt-bce) start from
the baseline run (ce; bce on multi-label shards) of the same seed, added when not
asked for. A finished run (summary.json) is skipped, an
interrupted one resumes, so rerunning the same command after a preemption
finishes the suite without training anything twice. Each run's saved setup is
checked the way ``fit`` checks it: a run made with other settings is refused,
naming what changed, or with ``rerun_changed`` trained again into a new dir
(``ce-seed0-2``) that the table then uses; one table never mixes settings.
"""
import contextlib
import dataclasses
import logging
from pathlib import Path

from eval.table import write_table
from eval.tasks import task_of
from shards.errors import UsageError
from shards.lock import hold
from shards.reader import open_shards, shards_manifest

from .config import FitConfig
from .loop.distributed import barrier, current, init
from .loop.fit import fit
from .loop.stages import STAGES
from .methods.registry import BASELINE, PAPER_METHODS, check_task, get_method, methods_for, param_names
from .rundir.resume import ResumeRefused, check_resume

log = logging.getLogger(__name__)


def from_stage1(method: str) -> bool:
    """Does the method start from a stage-1 run (crt, tau-norm, crt-bce), so that it runs after one?"""
    return STAGES[get_method(method).stage].from_stage1


def plan(methods: list[str], task: str = "single-label") -> list[str]:
    """Methods in run order: stage 1 first (the task's baseline included when a two-stage method needs it)."""
    two_stage = [m for m in methods if from_stage1(m)]
    first = [m for m in methods if not from_stage1(m)]
    if two_stage and BASELINE[task] not in first:
        first.insert(0, BASELINE[task])
    return first + two_stage


def parse_methods(text: str, shards) -> list[str]:
    """The methods asked for, each checked against the task of the shards: ``all`` is the paper's 15 on
    single-label shards and every multi-label method on multi-label ones; ``everything`` every method of the task."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise UsageError(f"--methods {text!r}: no method names; give all, everything or names such as ce,rw-ce")
    task = task_of(shards_manifest(shards)).name
    if text == "all":
        return list(PAPER_METHODS) if task == "single-label" else methods_for(task)
    if text == "everything":
        return methods_for(task)
    for name in names:
        check_task(get_method(name), task, shards, "--methods")
    return names


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: not a comma-separated list of integers (for example 0,1,2)") from None


def run_dir(out: Path, method: str, seed: int, fold: int | None = None) -> Path:
    return Path(out) / (f"{method}-seed{seed}" + ("" if fold is None else f"-fold{fold}"))


def place(cfg: FitConfig, index_sha: str, rerun_changed: bool) -> FitConfig:
    """``cfg`` with the run dir it goes in: its own name, or with ``rerun_changed`` the first of name-2, name-3,
    ... that is new or holds this very setup, when the named dir holds a run with other settings."""
    run, n = Path(cfg.out), 1
    while True:
        try:
            check_resume(cfg, run, index_sha)
            return dataclasses.replace(cfg, out=str(run))
        except ResumeRefused as e:
            if not rerun_changed:
                raise UsageError(f"{run} was trained with other settings ({'; '.join(e.changes)}); rerun the suite "
                                 f"with --rerun-changed to train it again into a new dir, or give a new --out") \
                    from None
        n += 1
        run = Path(f"{cfg.out}-{n}")


def suite(base: FitConfig, out: Path, methods: list[str], seeds: list[int], stop=None,
          rerun_changed: bool = False) -> str:
    """'finished' (table written) or 'interrupted' (rerun to continue). With ``base.folds`` K, every method
    and seed runs on each of the K folds (run dirs NAME-seedS-foldI); the table gives the mean and spread."""
    out = Path(out)
    with hold(out, "train suite") if init(base.device).main else contextlib.nullcontext():
        return _suite(base, out, methods, seeds, stop, rerun_changed)


def _suite(base: FitConfig, out: Path, methods: list[str], seeds: list[int], stop, rerun_changed: bool) -> str:
    ss = open_shards(base.shards)
    task, index_sha = task_of(ss.manifest).name, ss.index_sha256
    order = plan(methods, task)
    runs = []
    for seed, fold in [(s, f) for s in seeds for f in (range(base.folds) if base.folds else [None])]:
        used = {}
        for method in order:
            init = str(used[BASELINE[task]]) if from_stage1(method) else ""
            # a recipe's --loss-param set for one loss (asl's gamma_neg) goes to the methods whose loss takes it
            takes = param_names(get_method(method))
            cfg = dataclasses.replace(base, method=method, seed=seed, out=str(run_dir(out, method, seed, fold)),
                                      init_from=init, fold=fold or 0,
                                      loss_param={k: v for k, v in base.loss_param.items() if k in takes})
            cfg = place(cfg, index_sha, rerun_changed)
            used[method] = Path(cfg.out)
            runs.append(used[method])
            log.info("suite: %s (seed %d%s) in %s", method, seed, "" if fold is None else f", fold {fold}", cfg.out)
            if fit(cfg, stop) == "interrupted":
                return "interrupted"
    if current().main:
        write_table(runs, out / "results")
        log.info("results table: %s", out / "results.md")
    barrier()
    return "finished"
