"""The paper's Table 1 for any set of runs, or its multi-label counterpart: Markdown, LaTeX and CSV, with a
title and notes.

One row per method, in the paper's order (others after it). Single-label: Head, Medium, Tail and Avg accuracy
on balanced-test; mF1 and bAcc on test. Multi-label (the CXR-LT numbers, all on test): mAP, Head, Medium and
Tail mAP, AUROC, F1 at 0.5 and at per-class thresholds tuned on val; no published numbers to compare with. A
table of both tasks is refused; settings that differ between rows are noted under it. Several seeds: mean +-
standard deviation; one seed: the bootstrap 95% interval of each number. Per column the best point estimate is
bold and the second best underlined (ties share the mark). On real images the published bAcc of the method and
the difference sit beside ours; runs on synthetic pixels are marked as such and never compared.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from shards.atomic import make_dir, write_atomic
from shards.errors import UsageError

from .predictions import count_predictions
from .published import PUBLISHED_BACC
from .runs import SYNTHETIC, describe, is_number, is_synthetic, read_json, refuse_run_file, run_config, task_of_run
from .summary import GROUPS_NOTE, MULTILABEL_HEADS, RESAMPLE_NOTE
from .table_checks import check_one_kind, check_one_setting, check_one_task, settings_note

COLUMNS = [("head", "Head"), ("medium", "Medium"), ("tail", "Tail"), ("avg", "Avg"), ("mf1", "mF1"),
           ("bacc", "bAcc")]
MULTILABEL_COLUMNS = [(k, h) for k, h in MULTILABEL_HEADS.items() if k != "map_avg"]  # as Table 1: no Avg
# per task: the columns, and the LaTeX header line over them that names the split each is measured on
LAYOUT = {"single-label": (COLUMNS, r" & \multicolumn{4}{c}{balanced-test} & \multicolumn{2}{c}{test}",
                           r"\cmidrule(lr){2-5}\cmidrule(lr){6-7}"),
          "multi-label": (MULTILABEL_COLUMNS, r" & \multicolumn{7}{c}{test}", r"\cmidrule(lr){2-8}")}
PUBLISHED_SOURCE = "Holste et al. 2022 (arXiv 2208.13365), Table 1, ResNet-50 pretrained on ImageNet"


def find_runs(paths) -> list[Path]:
    """Run dirs (with summary.json) among the given run dirs and suite dirs."""
    runs = []
    for p in map(Path, paths):
        if not p.exists():
            raise UsageError(f"{p} does not exist; give run dirs or suite dirs (the --out of train fit or suite)")
        if (p / "summary.json").exists():
            runs.append(p)
        else:  # a suite dir; runs that `train fit --resume never` moved aside (NAME.old-TIME) are not in it
            runs += sorted(q.parent for q in p.glob("*/summary.json") if ".old-" not in q.parent.name)
    return runs


def _numbers(path: Path, summary: dict, task: str) -> dict:
    """The table's numbers from one run's summary.json (``path``); one missing or not a number is a UsageError
    naming it."""
    if task == "multi-label":
        wanted = {key: ("test", key) for key, _ in MULTILABEL_COLUMNS}
    else:
        wanted = {**{k: ("balanced_test", k) for k in ("head", "medium", "tail", "avg")},
                  "mf1": ("test", "mf1"), "bacc": ("test", "bacc")}
    out = {}
    for key, (section, name) in wanted.items():
        numbers = summary.get(section)
        v = numbers.get(name) if isinstance(numbers, dict) else None
        if not is_number(v):
            raise UsageError(f"{path}: {section}.{name} is {v!r}, not a number; the file was altered or is damaged: "
                             f"rerun the run's fit command into a new --out")
        out[key] = v
    return out


def _intervals(run: Path, task: str, n_boot: int, seed: int, by_patient: bool) -> dict:
    """(low, high) of each column, from the run's report numbers."""
    # imported here, as write_table's figures are: the reports load matplotlib, which train (importing this
    # module for its suite) should not load at every start
    from . import multilabel_report, single_label_report

    if task == "multi-label":
        merged = multilabel_report.numbers(run, n_boot, seed, by_patient)["test"]
    else:
        n = single_label_report.numbers(run, n_boot, seed, by_patient, full=False)
        merged = {**n["balanced_test"], **n["test"]}
    return {key: tuple(merged[key]["ci95"]) for key, _ in LAYOUT[task][0]}


def _spread(items: list, task: str, n_boot: int, seed: int, by_patient: bool) -> dict:
    """The row's numbers and spread: sd over seeds, or the bootstrap interval of its one run where it has
    predictions."""
    columns = LAYOUT[task][0]
    values = pd.DataFrame([_numbers(run / "summary.json", summary, task) for run, summary, _ in items])
    if len(items) > 1:
        folds = items[0][2]["config"].get("folds", 0)
        seeds = len({meta["config"]["seed"] for _, _, meta in items})
        row = {"spread": f"sd over {len(items)} seeds" if not folds else
               f"sd over {len(items)} runs: {folds} patient-grouped folds x {seeds} seed(s)"}
        for key, _ in columns:
            row[key], row[f"{key}_sd"] = values[key].mean(), values[key].std(ddof=1)
        return row
    run = items[0][0]
    row = {key: values[key].iloc[0] for key, _ in columns}
    if not (run / "predictions").exists():
        return {"spread": "none (no predictions saved)", **row}
    ci = _intervals(run, task, n_boot, seed, by_patient)
    for key, _ in columns:
        row[f"{key}_lo"], row[f"{key}_hi"] = ci[key]
    unit = "patients" if by_patient else "images"
    return {"spread": f"95% percentile bootstrap, {n_boot} resamples of {unit} (seed {seed})", **row}


def _images(run: Path, task: str) -> dict:
    preds = run / "predictions"
    views = ("test",) if task == "multi-label" else ("balanced-test", "test")
    return {f"{view.replace('-', '_')}_images": count_predictions(preds / f"{view}.parquet") if preds.exists()
            else np.nan for view in views}


def collect(runs: list[Path], n_boot: int = 1000, seed: int = 0, by_patient: bool = False) -> pd.DataFrame:
    """One row per method: mean, spread (std or interval) and seeds of each column, plus the published bAcc
    on real single-label images. ``attrs`` holds the title, whether the pixels are synthetic and the task."""
    by_method: dict[str, list] = {}
    for run in runs:
        summary, meta = read_json(run / "summary.json"), run_config(run)
        if not isinstance(summary.get("method"), str):
            raise UsageError(f"{run / 'summary.json'}: no method name; the file was altered or is damaged: rerun "
                             f"the run's fit command into a new --out")
        by_method.setdefault(summary["method"], []).append((run, summary, meta))
    task = check_one_task({run: task_of_run(run) for run in runs})
    synthetic = check_one_kind({run: is_synthetic(run) for run in runs})
    rows = []
    for method, items in by_method.items():
        check_one_setting(method, items)
        run, _, meta = items[0]
        seeds = len({meta["config"]["seed"] for _, _, meta in items})  # several runs of a seed: its folds
        row = {"method": method, "seeds": seeds, **_spread(items, task, n_boot, seed, by_patient),
               **_images(run, task), "dataset": meta["dataset"], "model": meta["config"].get("model", "?"),
               "synthetic": synthetic}
        if not synthetic and task == "single-label":
            row["published_bacc"] = PUBLISHED_BACC.get(meta["dataset"], {}).get(method, np.nan)
            row["delta_bacc"] = row["bacc"] - row["published_bacc"]
        rows.append(row)
    paper_order = list(PUBLISHED_BACC["nih-cxr-lt"])
    rows.sort(key=lambda r: (paper_order.index(r["method"]) if r["method"] in paper_order else len(paper_order),
                             r["method"]))
    table = pd.DataFrame(rows)
    metas = [meta for items in by_method.values() for _, _, meta in items]
    table.attrs["title"] = f"Long-tailed methods on {describe(metas)}" + (f" - {SYNTHETIC}" if synthetic else "")
    table.attrs["synthetic"] = synthetic
    table.attrs["task"] = task
    table.attrs["settings"] = settings_note(by_method)
    return table


def printed(v: float) -> float:
    """The value as a cell prints it (3 decimals): marks compare what the reader sees, so 0.3004 and 0.3001 tie."""
    return float(f"{v:.3f}")


def ranks(values: pd.Series) -> pd.Series:
    """1 for the best value(s), 2 for the second best, 0 otherwise, compared as printed; NaN never ranks."""
    top = sorted({printed(v) for v in values.dropna()}, reverse=True)[:2]
    return values.map(lambda v: top.index(printed(v)) + 1 if pd.notna(v) and printed(v) in top else 0)


def _cell(row, key: str) -> str:
    v = row[key]
    if pd.isna(v):
        return "n/a"
    if f"{key}_sd" in row and pd.notna(row.get(f"{key}_sd")):
        return f"{v:.3f} ± {row[f'{key}_sd']:.3f}"
    if f"{key}_lo" in row and pd.notna(row.get(f"{key}_lo")):
        return f"{v:.3f} [{row[f'{key}_lo']:.3f}, {row[f'{key}_hi']:.3f}]"
    return f"{v:.3f}"


def _images_text(values: pd.Series) -> str:
    known = sorted({int(v) for v in values.dropna()})
    return f" ({', '.join(map(str, known))} images)" if known else ""


def notes(table: pd.DataFrame) -> list[str]:
    """What each column is measured on, what the brackets are, how the marks are set, where the paper's
    numbers come from."""
    if table.attrs.get("task") == "multi-label":
        out = [f"All on test{_images_text(table['test_images'])}. mAP: macro average precision over the classes "
               f"with a positive in test; Head, Medium, Tail mAP: the mean AP of the group's classes "
               f"({GROUPS_NOTE}). AUROC: the mean over classes of each class's AUROC. F1@0.5: macro F1 with "
               f"every class thresholded at 0.5; F1@tuned: at per-class thresholds tuned for F1 on val."]
    else:
        out = [f"Head, Medium, Tail: mean per-class accuracy of the group's classes on balanced-test"
               f"{_images_text(table['balanced_test_images'])}; Avg: the mean of the three. mF1 (macro F1) and "
               f"bAcc (balanced accuracy): on test{_images_text(table['test_images'])}."]
    out += [f"{'±' if s.startswith('sd') else '[low, high]'}: {s}." for s in table["spread"].unique()
            if not s.startswith("none")]
    if table.attrs.get("task") == "multi-label" and table["spread"].str.contains("bootstrap").any():
        out.append(f"{RESAMPLE_NOTE}.")
    if table.attrs.get("settings"):
        out.append(table.attrs["settings"])
    out.append("Bold: best, underlined: second best in each column, by point estimate as printed (ties share "
               "the mark; a difference may lie within the spread).")
    if table.attrs.get("synthetic"):
        out.append("Trained and tested on synthetic pixels: no comparison with published results.")
    elif table.attrs.get("task") != "multi-label":
        out.append(f"bAcc (paper): {PUBLISHED_SOURCE}; Δ bAcc: ours minus the paper's.")
    return out


def _tex(text: str) -> str:
    for plain, tex in (("%", r"\%"), ("_", r"\_"), ("&", r"\&"), ("#", r"\#"), ("±", r"$\pm$"),
                       ("Δ", r"$\Delta$")):
        text = text.replace(plain, tex)
    return text


def _marked(text: str, rank: int, bold: str, under: str) -> str:
    return bold.format(text) if rank == 1 else under.format(text) if rank == 2 else text


def render(table: pd.DataFrame) -> dict[str, str]:
    """{'md': ..., 'tex': ..., 'csv': ...}"""
    compare = not table.attrs.get("synthetic") and "published_bacc" in table
    extra = ["bAcc (paper)", "Δ bAcc"] if compare else []
    columns, groups, rules = LAYOUT[table.attrs.get("task", "single-label")]
    marks = {key: ranks(table[key]) for key, _ in columns}
    heads = [h for _, h in columns] + extra
    md = [f"**{table.attrs.get('title', 'Long-tailed methods')}**", "",
          "| Method | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    tex = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(table.attrs.get('title', ''))}}}",
           r"\begin{tabular}{l" + "c" * len(heads) + "}", r"\toprule",
           groups + (r" & \multicolumn{2}{c}{published}" if compare else "") + r" \\",
           rules, "Method & " + " & ".join(map(_tex, heads)) + r" \\",
           r"\midrule"]
    for i, row in table.iterrows():
        cells = [_cell(row, key) for key, _ in columns]
        cells_md = [_marked(t, marks[key][i], "**{}**", "<u>{}</u>") for t, (key, _) in zip(cells, columns)]
        cells_tex = [_marked(_tex(t), marks[key][i], r"\textbf{{{}}}", r"\underline{{{}}}")
                     for t, (key, _) in zip(cells, columns)]
        if compare:
            pub = "n/a" if pd.isna(row["published_bacc"]) else f"{row['published_bacc']:.3f}"
            delta = "n/a" if pd.isna(row["delta_bacc"]) else f"{row['delta_bacc']:+.3f}"
            cells_md, cells_tex = cells_md + [pub, delta], cells_tex + [pub, delta]
        md.append(f"| {row['method']} | " + " | ".join(cells_md) + " |")
        tex.append(f"{_tex(row['method'])} & " + " & ".join(cells_tex) + r" \\")
    lines = notes(table)
    md += [""] + lines
    tex += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip\footnotesize " + _tex(" ".join(lines)),
            r"\end{table}"]
    return {"md": "\n".join(md) + "\n", "tex": "\n".join(tex) + "\n", "csv": table.to_csv(index=False)}


def table_files(prefix: Path) -> list[Path]:
    """What write_table writes: PREFIX.md, .tex, .csv, .png and .pdf (the figure as vector)."""
    prefix = Path(prefix)
    return [prefix.with_name(f"{prefix.name}.{ext}") for ext in ("md", "tex", "csv", "png", "pdf")]


def write_table(paths, prefix: Path, n_boot: int = 1000, by_patient: bool = False) -> str:
    """PREFIX.md, .tex, .csv and the comparison figure PREFIX.png and .pdf; returns the Markdown."""
    from .figures import save, suite_comparison

    runs = find_runs(paths)
    if not runs:
        raise UsageError(f"no finished runs (summary.json) in {', '.join(map(str, paths))}; "
                         f"give run dirs or suite dirs whose runs have finished")
    table = collect(runs, n_boot=n_boot, by_patient=by_patient)
    out = render(table)
    *texts, png, pdf = table_files(prefix)
    for path in (*texts, png, pdf):
        refuse_run_file(path, runs)
    make_dir(png.parent)
    for path in texts:
        write_atomic(path, out[path.suffix[1:]])
    save(suite_comparison(table, table.attrs["title"]), png)
    return out["md"]
