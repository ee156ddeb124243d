"""Which runs one table may hold: one task, one kind of pixels, and per row one setting with each seed
once; and the note naming the settings that differ between rows (a note, not a refusal: comparing methods
trained differently is the user's call, but the table says so)."""
from pathlib import Path

from shards.errors import UsageError


# config fields that say where and how a run ran, not what it trained
NOT_SETTINGS = {"out", "seed", "fold", "shards", "init_from", "device", "loader", "workers", "resume",
                "checkpoint_minutes", "tensorboard", "compile", "deterministic"}


def check_one_setting(method: str, items: list) -> None:
    """The runs of one method in one row differ by seed (and fold) only: other settings, other shards, a seed twice
    (``train suite --rerun-changed`` leaves NAME and NAME-2) or one seed from two stage-1 runs are refused,
    naming the runs."""
    first, _, base = items[0]
    seeds = {}
    for run, summary, meta in items:
        cfg, ref = meta["config"], base["config"]
        diff = [f"{k}: {ref[k]!r} vs {cfg[k]!r}" for k in sorted(set(ref) & set(cfg) - NOT_SETTINGS)
                if ref[k] != cfg[k]]
        if summary.get("index_sha256") != items[0][1].get("index_sha256"):
            diff.append("another shards index")
        if diff:
            raise UsageError(f"{first} and {run} both ran {method} but with other settings ({'; '.join(diff)}); "
                             "give the run dirs of one setting")
        seed = cfg.get("seed") if not cfg.get("folds") else (cfg.get("seed"), cfg.get("fold"))
        if seed in seeds:
            twin, stage1 = seeds[seed]
            if stage1 != cfg.get("init_from"):  # cRT or tau-norm made from two stage-1 runs
                raise UsageError(f"{twin} and {run} are both {method} seed {seed} but differ in their stage-1 run "
                                 f"(--init-from {stage1} vs {cfg.get('init_from')}); pass the runs of one stage-1 "
                                 "run, or put them in separate tables")
            raise UsageError(f"{twin} and {run} are both {method} seed {seed}; give the run dirs of one of them")
        seeds[seed] = run, cfg.get("init_from")


# config fields not compared between rows, beyond NOT_SETTINGS: the method is the row; the others only act in
# some methods, so they differ between rows by design or mean nothing in most (allow_unfinished and
# crt_features: two-stage methods; drw_epoch, drw_lr_factor: DRW; mixup_alpha: the MixUp family;
# paper_ldam: the LDAM family)
NOT_ROW_SETTINGS = NOT_SETTINGS | {"method", "allow_unfinished", "crt_features", "drw_epoch", "drw_lr_factor",
                                   "mixup_alpha", "paper_ldam"}


def settings_note(by_method: dict[str, list]) -> str:
    """'Settings differ between rows: image_size 64 (asl), 32 (rw-bce); ...', or '' when the rows share
    their settings (each row's runs share theirs: check_one_setting)."""
    configs = {method: items[0][2]["config"] for method, items in by_method.items()}
    keys = sorted(set.intersection(*(set(c) for c in configs.values())) - NOT_ROW_SETTINGS)
    parts = []
    for key in keys:
        methods_of: dict[str, list[str]] = {}
        for method, config in configs.items():
            methods_of.setdefault(str(config[key]), []).append(method)
        if len(methods_of) > 1:
            parts.append(f"{key} " + ", ".join(f"{v} ({', '.join(ms)})" for v, ms in methods_of.items()))
    return f"Settings differ between rows: {'; '.join(parts)}." if parts else ""


def check_one_kind(synthetic: dict[Path, bool]) -> bool:
    """Whether the runs are on synthetic pixels; a table mixing them with real images is refused."""
    kinds = set(synthetic.values())
    if len(kinds) > 1:
        fake = ", ".join(str(r) for r, s in synthetic.items() if s)
        raise UsageError(f"the runs mix synthetic pixels ({fake}) with real images; make one table of each")
    return kinds == {True}


def _few(runs: list, most: int = 3) -> str:
    """'a, b, c and 2 more'."""
    names = ", ".join(map(str, runs[:most]))
    return names + (f" and {len(runs) - most} more" if len(runs) > most else "")


def check_one_task(tasks: dict[Path, str]) -> str:
    """The task of the runs; a table mixing single- and multi-label runs is refused, naming both."""
    if len(set(tasks.values())) > 1:
        multi, single = ([r for r, t in tasks.items() if t == task] for task in ("multi-label", "single-label"))
        raise UsageError(f"the runs mix multi-label ({_few(multi)}) with single-label ones ({_few(single)}); "
                         "their numbers differ, make one table of each")
    return next(iter(tasks.values()))
