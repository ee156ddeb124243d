import json
import subprocess
import sys

import pandas as pd

from eval.table import collect, ranks, render


def fake_run(root, name, method, seed, bacc, head=0.5):
    run = root / name
    run.mkdir(parents=True)
    summary = {"method": method, "balanced_test": {"head": head, "medium": 0.2, "tail": 0.1, "avg": 0.3},
               "test": {"mf1": 0.2, "bacc": bacc}, "groups": {}}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.json").write_text(json.dumps({"dataset": "nih-cxr-lt", "config": {"seed": seed}}))
    return run


def test_ranks_mark_best_and_second_with_ties_sharing():
    assert ranks(pd.Series([0.3, 0.5, 0.5, 0.4, float("nan")])).tolist() == [0, 1, 1, 2, 0]


def test_bold_and_underline_land_on_the_right_cells_ties_included(tmp_path):
    runs = [fake_run(tmp_path, "a", "ce", 0, 0.10, head=0.6), fake_run(tmp_path, "b", "rw-ce", 0, 0.30, head=0.6),
            fake_run(tmp_path, "c", "crt", 0, 0.25, head=0.4)]
    md = render(collect(runs))["md"].splitlines()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in md[2:]}
    assert rows["rw-ce"][5] == "**0.300**" and rows["crt"][5] == "<u>0.250</u>" and rows["ce"][5] == "0.100"
    assert rows["ce"][0] == rows["rw-ce"][0] == "**0.600**" and rows["crt"][0] == "<u>0.400</u>"
    tex = render(collect(runs))["tex"]
    assert r"\textbf{0.300}" in tex and r"\underline{0.250}" in tex


def test_several_seeds_give_mean_and_sd_and_the_published_column(tmp_path):
    runs = [fake_run(tmp_path, f"s{i}", "rw-ce", i, b) for i, b in enumerate((0.2, 0.3, 0.4))]
    table = collect(runs)
    row = table.iloc[0]
    assert row["seeds"] == 3 and row["bacc"] == 0.3 and abs(row["bacc_sd"] - 0.1) < 1e-12
    assert row["published_bacc"] == 0.260 and abs(row["delta_bacc"] - 0.04) < 1e-12
    assert "0.300 ± 0.100" in render(table)["md"] and "| 0.260 | +0.040 |" in render(table)["md"]


def test_table_command_writes_every_format_and_the_comparison_figure(stage1_run, tmp_path):
    r = subprocess.run([sys.executable, "-m", "eval", "table", str(stage1_run), "--out", str(tmp_path / "t"),
                        "--resamples", "50"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for ext in ("md", "tex", "csv"):
        assert (tmp_path / f"t.{ext}").stat().st_size > 0
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    assert "| ce |" in r.stdout and "[" in r.stdout  # one seed: a bootstrap interval
