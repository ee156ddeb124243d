"""The paper's Table 1 for any set of runs: Markdown, LaTeX and CSV.

One row per method, in the paper's order (others after it): Head, Medium, Tail and Avg accuracy on balanced-test; mF1
and bAcc on test. Several seeds: mean +- standard deviation; one seed: the
bootstrap 95% interval of each number. Per column the best is bold and the
second best underlined (ties share the mark). The published bAcc of the method
and the difference sit beside ours.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .published import PUBLISHED_BACC

COLUMNS = [("head", "Head"), ("medium", "Medium"), ("tail", "Tail"), ("avg", "Avg"), ("mf1", "mF1"),
           ("bacc", "bAcc")]


def find_runs(paths) -> list[Path]:
    """Run dirs (with summary.json) among the given run dirs and suite dirs."""
    runs = []
    for p in map(Path, paths):
        if (p / "summary.json").exists():
            runs.append(p)
        else:
            runs += sorted(q.parent for q in p.glob("*/summary.json"))
    return runs


def _numbers(summary: dict) -> dict:
    bt, test = summary["balanced_test"], summary["test"]
    return {"head": bt["head"], "medium": bt["medium"], "tail": bt["tail"], "avg": bt["avg"],
            "mf1": test["mf1"], "bacc": test["bacc"]}


def _intervals(run: Path, n_boot: int, seed: int) -> dict:
    """(low, high) of each column, from the run's report numbers."""
    from .report import numbers

    n = numbers(run, n_boot, seed, ranking=False)
    merged = {**n["balanced_test"], **n["test"]}
    return {key: tuple(merged[key]["ci95"]) for key, _ in COLUMNS}


def collect(runs: list[Path], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per method: mean, spread (std or interval) and seeds of each column, plus the published bAcc."""
    rows = []
    by_method: dict[str, list] = {}
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        by_method.setdefault(summary["method"], []).append((run, summary))
    for method, items in by_method.items():
        values = pd.DataFrame([_numbers(s) for _, s in items])
        row = {"method": method, "seeds": len(items)}
        if len(items) > 1:
            for key, _ in COLUMNS:
                row[key], row[f"{key}_sd"] = values[key].mean(), values[key].std(ddof=1)
        else:
            run, summary = items[0]
            ci = _intervals(run, n_boot, seed) if (run / "predictions").exists() else {}
            for key, _ in COLUMNS:
                row[key] = values[key].iloc[0]
                row[f"{key}_lo"], row[f"{key}_hi"] = ci.get(key, (np.nan, np.nan))
        dataset = json.loads((run / "config.json").read_text())["dataset"]
        row["published_bacc"] = PUBLISHED_BACC.get(dataset, {}).get(method, np.nan)
        row["delta_bacc"] = row["bacc"] - row["published_bacc"]
        rows.append(row)
    paper_order = list(PUBLISHED_BACC["nih-cxr-lt"])
    rows.sort(key=lambda r: (paper_order.index(r["method"]) if r["method"] in paper_order else len(paper_order),
                             r["method"]))
    return pd.DataFrame(rows)


def ranks(values: pd.Series) -> pd.Series:
    """1 for the best value(s), 2 for the second best, 0 otherwise; NaN never ranks."""
    distinct = sorted({round(v, 12) for v in values.dropna()}, reverse=True)
    top = distinct[:2]
    return values.map(lambda v: top.index(round(v, 12)) + 1 if pd.notna(v) and round(v, 12) in top else 0)


def _cell(row, key: str) -> str:
    v = row[key]
    if pd.isna(v):
        return "n/a"
    if f"{key}_sd" in row and pd.notna(row.get(f"{key}_sd")):
        return f"{v:.3f} ± {row[f'{key}_sd']:.3f}"
    if f"{key}_lo" in row and pd.notna(row.get(f"{key}_lo")):
        return f"{v:.3f} [{row[f'{key}_lo']:.3f}, {row[f'{key}_hi']:.3f}]"
    return f"{v:.3f}"


def render(table: pd.DataFrame) -> dict[str, str]:
    """{'md': ..., 'tex': ..., 'csv': ...}"""
    marks = {key: ranks(table[key]) for key, _ in COLUMNS}
    md = ["| Method | " + " | ".join(h for _, h in COLUMNS) + " | bAcc (paper) | Δ bAcc |",
          "|---|" + "---|" * (len(COLUMNS) + 2)]
    tex = [r"\begin{tabular}{l" + "c" * (len(COLUMNS) + 2) + "}", r"\toprule",
           "Method & " + " & ".join(h for _, h in COLUMNS) + r" & bAcc (paper) & $\Delta$ bAcc \\", r"\midrule"]
    for i, row in table.iterrows():
        cells_md, cells_tex = [], []
        for key, _ in COLUMNS:
            text, rank = _cell(row, key), marks[key][i]
            cells_md.append(f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text)
            t = text.replace("±", r"$\pm$")
            cells_tex.append(rf"\textbf{{{t}}}" if rank == 1 else rf"\underline{{{t}}}" if rank == 2 else t)
        pub = "n/a" if pd.isna(row["published_bacc"]) else f"{row['published_bacc']:.3f}"
        delta = "n/a" if pd.isna(row["delta_bacc"]) else f"{row['delta_bacc']:+.3f}"
        md.append(f"| {row['method']} | " + " | ".join(cells_md) + f" | {pub} | {delta} |")
        tex.append(f"{row['method']} & " + " & ".join(cells_tex) + f" & {pub} & {delta} \\\\")
    tex += [r"\bottomrule", r"\end{tabular}"]
    return {"md": "\n".join(md) + "\n", "tex": "\n".join(tex) + "\n", "csv": table.to_csv(index=False)}


def write_table(paths, prefix: Path, n_boot: int = 1000) -> str:
    """PREFIX.md, .tex, .csv and the comparison figure PREFIX.png; returns the Markdown."""
    from .figures import suite_comparison

    table = collect(find_runs(paths), n_boot=n_boot)
    out = render(table)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for ext, text in out.items():
        prefix.with_name(f"{prefix.name}.{ext}").write_text(text)
    suite_comparison(table, prefix.with_name(f"{prefix.name}.png"))
    return out["md"]
