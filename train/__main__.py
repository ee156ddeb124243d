"""python -m train fit | suite | bench | methods | models | predict | evaluate | export"""
import argparse
import logging
import sys
from pathlib import Path

import torch

from shards.errors import UsageError
from shards.flags import int_at_least

from .config import FitConfig, add_flags, flag, from_args
from .loop.distributed import init
from .loop.fit import fit
from .loop.step import NonFiniteLoss
from .methods.registry import METHODS, PAPER_METHODS
from .suite import parse_methods, parse_seeds, suite
from .use import cli as use

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: checkpointed, rerun the same command to resume
REQUIRED = {"fit": ("shards", "out"), "suite": ("shards",), "bench": ("shards",)}
# what only training uses: bench times steps, so these flags would change nothing there
TRAINING_ONLY = ("out", "method", "init_from", "allow_unfinished", "resume", "epochs", "patience", "lr",
                 "checkpoint_minutes", "mixup_alpha", "drw_epoch", "drw_lr_factor", "crt_features", "sync_bn",
                 "paper_bn_bug", "paper_ldam", "tensorboard", "schedule", "warmup_epochs", "freeze_backbone_epochs",
                 "pretrained_source")


def parser(prog: str = "python -m train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter
    f = sub.add_parser("fit", help="train one method into a run dir (resumes by default)", formatter_class=defaults)
    add_flags(f)
    s = sub.add_parser("suite", help="every method and seed into one dir, then the results table",
                       formatter_class=defaults)
    # SUPPRESS: a required flag has no default to show ("(default: None)")
    s.add_argument("--suite-out", "--out", dest="suite_out", required=True, default=argparse.SUPPRESS,
                   help="the suite dir: a run dir per method and seed, and results.md (required)")
    s.add_argument("--methods", default="all", help="all (the paper's 15; on multi-label shards every "
                   "multi-label method), everything (every method of the shards' task), or a,b,c")
    s.add_argument("--seeds", default="0", help="comma-separated integers")
    s.add_argument("--rerun-changed", action="store_true",
                   help="train a run that was trained with other settings again, into NAME-2 (else: refused)")
    add_flags(s, exclude=("out", "method", "seed", "init_from", "fold"))  # --folds K: every fold runs
    b = sub.add_parser("bench", help="loader-only, model-only and end-to-end images/s on this machine",
                       formatter_class=defaults)
    # no default shown for --steps / --warmup: it depends on the device (SUPPRESS leaves the attribute unset)
    b.add_argument("--steps", type=int_at_least(1), default=argparse.SUPPRESS,
                   help="timed steps per measurement (default: 200 on a GPU, 20 on a CPU)")
    b.add_argument("--warmup", type=int_at_least(0), default=argparse.SUPPRESS,
                   help="untimed steps first (default: 10 on a GPU, 3 on a CPU)")
    b.add_argument("--repeat", type=int_at_least(1), default=1, help="measure this many times: median and spread")
    b.add_argument("--json", default="", help="also write the numbers to this file")
    b.add_argument("--baseline-png", default="", help="time the paper's input path on these 1024 px PNGs")
    add_flags(b, exclude=TRAINING_ONLY)
    listing = "list the methods: name, what it is, its task (multi-label) or [beyond the paper]"
    sub.add_parser("methods", help="list the methods", description=listing)
    m = sub.add_parser("models", help="list the backbones --model takes (ours and timm's pretrained names) and "
                       "whether their weights are in the local cache", description="list the backbones --model "
                       "takes (ours and timm's pretrained names) and whether their weights are in the local cache")
    m.add_argument("contains", nargs="?", default="", help="only names containing this (e.g. convnext)")
    use.add_parsers(sub)  # predict, export
    return p


def parse(argv, prog: str = "python -m train"):
    return parser(prog).parse_args(argv)


def main(argv=None, prog: str = "python -m train") -> int:
    a = parse(argv, prog)
    world = None
    try:
        cfg = from_args(a) if a.cmd not in ("methods", "models", *use.COMMANDS) else FitConfig()
        missing = [flag(name) for name in REQUIRED.get(a.cmd, ()) if not getattr(cfg, name)]
        if missing:
            raise UsageError(f"{a.cmd} needs {' and '.join(missing)} (or a --config file that sets it)")
        world = init(cfg.device)
        # under torchrun only rank 0 talks; the others log warnings and errors
        logging.basicConfig(level=logging.INFO if world.main else logging.WARNING,
                            format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
        return run(a, cfg, world)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    finally:
        if world is not None and world.active:
            torch.distributed.destroy_process_group()


def run(a, cfg: FitConfig, world) -> int:
    say = print if world.main else (lambda *args, **kw: None)
    if a.cmd in use.COMMANDS:
        return use.run(a, say)
    if a.cmd == "methods":
        for name, m in METHODS.items():
            tag = f"  [{m.task}]" if m.task != "single-label" else "" if name in PAPER_METHODS \
                else "  [beyond the paper]"
            say(f"{name:<22} {m.summary}{tag}")
        return 0
    if a.cmd == "models":
        return list_models(a.contains, say)
    if a.cmd == "bench":
        return run_bench(a, cfg)
    if a.cmd == "suite":
        seeds = parse_seeds(a.seeds)  # checked first: it needs no shards dir
        status = suite(cfg, a.suite_out, parse_methods(a.methods, cfg.shards), seeds,
                       rerun_changed=a.rerun_changed)
    else:
        status = fit(cfg)
    where = a.suite_out if a.cmd == "suite" else cfg.out
    if status == "interrupted":
        say(f"interrupted: checkpointed in {where}; rerun the same command to resume")
        return EXIT_INTERRUPTED
    if a.cmd == "suite":
        say((Path(where) / "results.md").read_text())
    say(f"{where}: finished; see {where}/{'results.md' if a.cmd == 'suite' else 'summary.json'}")
    return 0


def list_models(contains: str, say) -> int:
    from .models import list_backbones

    rows = list_backbones(contains)
    width = max((len(n) for n, _, _ in rows), default=0)
    for name, source, cached in rows:
        say(f"{name:<{width}}  {source:<11}  {'weights cached' if cached else ''}".rstrip())
    say(f"{len(rows)} backbone(s){' containing ' + repr(contains) if contains else ''}; any timm architecture "
        f"name (`timm.list_models()`) also builds from scratch with --pretrained none")
    return 0


def run_bench(a, cfg) -> int:
    import json

    from shards.atomic import write_atomic

    from .bench import bench, table

    result = bench(cfg, getattr(a, "steps", None), getattr(a, "warmup", None), a.baseline_png or None, a.repeat)
    print(table(result))
    if a.json:
        write_atomic(Path(a.json), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
