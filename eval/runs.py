"""A finished run dir as eval reads it: its JSON files, its task, whether its pixels are synthetic, its title.

A damaged file is the user's to fix, so reading one raises a one-line UsageError naming it.
"""
import json
import re
from pathlib import Path

from shards.errors import UsageError
from shards.format import GROUPS, MANIFEST_FILE

from .predictions import Predictions, read_predictions

SYNTHETIC = "SYNTHETIC pixels, not comparable with published results"


def is_number(v) -> bool:
    """An int or float of a JSON file, not a bool (JSON's true is Python's 1)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_json(path: Path, fix: str = "rerun the fit command into a new --out") -> dict:
    """A run's JSON file; missing or damaged is a UsageError naming it, ending in ``fix`` when damaged."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} is missing; rerun the fit command of {path.parent} "
                         f"(it resumes and rewrites the run's files)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is damaged (not JSON: {e}); {fix}") from None
    except OSError as e:  # a folder, or unreadable
        raise UsageError(f"{path}: cannot be read ({e.strerror}); {fix}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is damaged (not a JSON object); {fix}")
    return data


# the files a run reads back (model, setup, history, results): no command's --out may replace one
RUN_INPUTS = ("config.json", "last.pt", "best.pt", "metrics.csv", "summary.json", "train.log", "predictions")


def refuse_run_file(out: Path, runs, flag: str = "--out") -> None:
    """An ``out`` that is one of these runs' own files (or inside predictions/) would destroy the run."""
    target = Path(out).resolve()
    for run in map(Path, runs):
        for name in RUN_INPUTS:
            own = (run / name).resolve()
            if target == own or own in target.parents:
                raise UsageError(f"{flag} {out} is {run}'s own {name}; writing there would destroy the run; "
                                 f"give an {flag} outside the run's files")


DATASET = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
ALTERED = "the file was altered or is damaged; rerun the fit command into a new --out"


def run_config(run: Path) -> dict:
    """config.json of a run, with what a table reads from it checked: its settings and dataset."""
    path = Path(run) / "config.json"
    meta = read_json(path)
    dataset = meta.get("dataset")
    # a name: text with newlines or markup from an altered file would land in report.md and the tables verbatim
    if not isinstance(meta.get("config"), dict) or not isinstance(dataset, str) or not DATASET.fullmatch(dataset):
        raise UsageError(f"{path}: no 'config' mapping of settings, or a 'dataset' that is not a name; {ALTERED}")
    return meta


def run_meta(run: Path) -> dict:
    """config.json of a run, with what a report reads from it checked: class names, their groups and counts."""
    path = Path(run) / "config.json"
    meta = run_config(run)
    names, groups = meta.get("class_names"), meta.get("groups")
    fix = ALTERED
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names) \
            or len(set(names)) != len(names):
        raise UsageError(f"{path}: 'class_names' is not a list of distinct class names; {fix}")
    if not isinstance(groups, list) or len(groups) != len(names) or not set(groups) <= set(GROUPS):
        raise UsageError(f"{path}: 'groups' is not one of {', '.join(GROUPS)} per class ({len(names)}); {fix}")
    counts = meta.get("train_counts", [0] * len(names))
    if not isinstance(counts, list) or len(counts) != len(names):
        raise UsageError(f"{path}: 'train_counts' is not one count per class ({len(names)}); {fix}")
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("method"), dict):
        raise UsageError(f"{path}: no 'config' and 'method' mappings; {fix}")
    cfg = meta["config"]
    wrong = [k for k, typ in (("method", str), ("model", str), ("seed", int)) if not isinstance(cfg.get(k), typ)]
    wrong += [k for k in ("dataset",) if not isinstance(meta.get(k), str)]
    wrong += [f"method.{k}" for k in ("loss", "name") if not isinstance(meta["method"].get(k), str)]
    if wrong:
        raise UsageError(f"{path}: {', '.join(wrong)} missing or of the wrong type; {fix}")
    return meta


def run_predictions(run: Path, split: str) -> Predictions:
    """RUN/predictions/SPLIT.parquet, checked against the run's classes."""
    return read_predictions(Path(run) / "predictions" / f"{split}.parquet", len(run_meta(run)["class_names"]))


def finished(run: Path) -> Path:
    """``run`` itself; a path that does not exist or a run without summary.json is refused."""
    run = Path(run)
    if not run.exists():
        raise UsageError(f"{run} does not exist; give a run dir (the --out of train fit)")
    if not (run / "config.json").exists():
        raise UsageError(f"{run} is not a run dir (no config.json); give the --out of a `python -m train fit`")
    if not (run / "summary.json").exists():
        raise UsageError(f"{run}: no summary.json; the run has not finished (rerun its fit command)")
    return run


def task_of_run(run: Path) -> str:
    """"single-label" or "multi-label": summary.json says so, else config.json's method (runs made since
    multi-label training); older runs are single-label."""
    run = Path(run)
    summary = read_json(run / "summary.json") if (run / "summary.json").exists() else {}
    if "task" in summary:
        return summary["task"]
    return read_json(run / "config.json").get("method", {}).get("task", "single-label")


def is_synthetic(run: Path) -> bool:
    """Whether the run trained on synthetic pixels.

    config.json says so in runs written since the shards' manifest records it; older runs fall back to
    the manifest of their shards dir where it still exists, and count as real images otherwise."""
    meta = read_json(Path(run) / "config.json")
    if "synthetic" in meta:
        return bool(meta["synthetic"])
    shards = meta.get("config", {}).get("shards")
    if shards and (Path(shards) / MANIFEST_FILE).exists():
        return bool(read_json(Path(shards) / MANIFEST_FILE).get("synthetic", False))
    return False


def describe(metas: list[dict]) -> str:
    """'nih-cxr-lt, model tiny, seeds 0, 1' from the config.json of each run, for titles."""
    def values(get) -> str:
        return ", ".join(map(str, sorted({get(m) for m in metas}, key=str)))

    seeds = values(lambda m: m["config"].get("seed", "?"))
    return (f"{values(lambda m: m.get('dataset', '?'))}, model {values(lambda m: m['config'].get('model', '?'))}, "
            f"seed{'s' if ',' in seeds else ''} {seeds}")
