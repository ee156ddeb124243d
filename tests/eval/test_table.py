import json
import subprocess
import sys

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from eval.figures import suite_comparison
from eval.runs import is_synthetic
from eval.table import collect, find_runs, ranks, render, write_table
from shards.errors import UsageError


def fake_run(root, name, method, seed, bacc, head=0.5, **meta):
    run = root / name
    run.mkdir(parents=True)
    summary = {"method": method, "balanced_test": {"head": head, "medium": 0.2, "tail": 0.1, "avg": 0.3},
               "test": {"mf1": 0.2, "bacc": bacc}, "groups": {}}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.json").write_text(json.dumps({"dataset": "nih-cxr-lt", "config": {"seed": seed, "model": "tiny"},
                                                 **meta}))
    return run


def md_rows(md: str) -> dict:
    """{method: [cells]} of a Markdown table's body."""
    lines = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines}


def test_ranks_mark_best_and_second_with_ties_sharing():
    assert ranks(pd.Series([0.3, 0.5, 0.5, 0.4, float("nan")])).tolist() == [0, 1, 1, 2, 0]


def test_bold_and_underline_land_on_the_right_cells_ties_included(tmp_path):
    runs = [fake_run(tmp_path, "a", "ce", 0, 0.10, head=0.6), fake_run(tmp_path, "b", "rw-ce", 0, 0.30, head=0.6),
            fake_run(tmp_path, "c", "crt", 0, 0.25, head=0.4)]
    rows = md_rows(render(collect(runs))["md"])
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


def test_runs_of_one_method_with_other_settings_are_refused_naming_the_setting(tmp_path):
    runs = [fake_run(tmp_path, f"ce-seed{i}", "ce", i, 0.2) for i in range(2)]
    config = json.loads((runs[1] / "config.json").read_text())
    config["config"]["model"] = "resnet50"
    (runs[1] / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="both ran ce but with other settings \\(model: 'tiny' vs 'resnet50'\\)"):
        collect(runs)


def test_one_seed_of_a_method_twice_is_refused(tmp_path):
    runs = [fake_run(tmp_path, "ce-seed0", "ce", 0, 0.2), fake_run(tmp_path, "ce-seed0-2", "ce", 0, 0.3)]
    with pytest.raises(UsageError, match="are both ce seed 0"):
        collect(runs)


def test_a_suite_dir_leaves_out_the_runs_moved_aside(tmp_path):
    kept = fake_run(tmp_path / "suite", "ce-seed0", "ce", 0, 0.2)
    fake_run(tmp_path / "suite", "ce-seed0.old-20261128-061500", "ce", 0, 0.3)
    assert find_runs([tmp_path / "suite"]) == [kept]


def test_table_command_writes_every_format_and_the_comparison_figure(stage1_run, tmp_path):
    r = subprocess.run([sys.executable, "-m", "eval", "table", str(stage1_run), "--out", str(tmp_path / "t"),
                        "--resamples", "50"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for ext in ("md", "tex", "csv"):
        assert (tmp_path / f"t.{ext}").stat().st_size > 0
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    assert "| ce |" in r.stdout and "[" in r.stdout  # one seed: a bootstrap interval


def test_a_synthetic_run_is_marked_in_every_format_and_never_set_beside_the_paper(tmp_path):
    runs = [fake_run(tmp_path, f"s{i}", "rw-ce", i, b, synthetic=True) for i, b in enumerate((0.2, 0.3))]
    table = collect(runs)
    out = render(table)
    assert "published_bacc" not in table and "delta_bacc" not in table and table["synthetic"].all()
    assert "SYNTHETIC pixels" in out["md"].splitlines()[0] and "SYNTHETIC pixels" in out["tex"]
    for text in (out["md"], out["tex"], out["csv"]):
        assert "paper" not in text.replace("paper's", "") and "0.260" not in text and "Δ" not in text
    assert md_rows(out["md"])["rw-ce"][5] == "**0.250 ± 0.071**"


def test_a_run_without_the_synthetic_key_reads_it_from_its_shards_manifest_else_counts_as_real(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    old = fake_run(tmp_path, "old", "ce", 0, 0.2, config={"seed": 0, "shards": str(shards)})
    assert not is_synthetic(old)  # no manifest there any more
    (shards / "manifest.json").write_text(json.dumps({"dataset": "nih-cxr-lt", "synthetic": True}))
    assert is_synthetic(old)
    assert not is_synthetic(fake_run(tmp_path, "new", "ce", 0, 0.2, synthetic=False,
                                     config={"seed": 0, "shards": str(shards)}))


def test_a_table_mixing_synthetic_and_real_runs_is_refused(tmp_path):
    runs = [fake_run(tmp_path, "a", "ce", 0, 0.1, synthetic=True), fake_run(tmp_path, "b", "rw-ce", 0, 0.3)]
    with pytest.raises(UsageError, match="mix synthetic pixels"):
        collect(runs)


def test_the_notes_say_what_each_column_is_measured_on_what_the_spread_is_and_how_cells_are_marked(tmp_path):
    runs = [fake_run(tmp_path, f"s{i}", "rw-ce", i, b) for i, b in enumerate((0.2, 0.3, 0.4))]
    md = render(collect(runs))["md"]
    notes = md.split("\n\n")[-1]
    assert "Head, Medium, Tail: mean per-class accuracy of the group's classes on balanced-test" in notes
    assert "mF1 (macro F1) and bAcc (balanced accuracy): on test" in notes
    assert "±: sd over 3 seeds." in notes and "by point estimate" in notes
    assert "bAcc (paper): Holste et al. 2022 (arXiv 2208.13365)" in notes
    assert md.splitlines()[0] == "**Long-tailed methods on nih-cxr-lt, model tiny, seeds 0, 1, 2**"


@pytest.mark.parametrize("name", ["summary.json", "config.json"])
def test_a_damaged_json_file_of_a_run_is_one_usage_error_naming_it(tmp_path, name):
    run = fake_run(tmp_path, "a", "ce", 0, 0.1)
    (run / name).write_text('{"method": "ce", "bala')
    with pytest.raises(UsageError, match=f"{run / name} is damaged"):
        write_table([run], tmp_path / "t")


def test_a_table_of_a_path_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(UsageError, match="nope does not exist"):
        write_table([tmp_path / "nope"], tmp_path / "t")
    with pytest.raises(UsageError, match="no finished runs"):
        write_table([tmp_path], tmp_path / "t")


def _legend_outside_every_axes(fig) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    boxes = [legend.get_window_extent(renderer) for legend in legends]
    return bool(boxes) and not any(b.overlaps(ax.get_window_extent(renderer)) for b in boxes for ax in fig.axes)


def test_the_comparison_figure_labels_its_error_bars_and_draws_the_paper_as_markers_outside_the_legend(tmp_path):
    runs = [fake_run(tmp_path, f"s{i}", "rw-ce", i, b) for i, b in enumerate((0.2, 0.3, 0.4))]
    runs.append(fake_run(tmp_path, "c", "ce", 0, 0.1))
    table = collect(runs)
    fig = suite_comparison(table, table.attrs["title"])
    ax1, ax2 = fig.axes
    assert fig._suptitle.get_text() == "Long-tailed methods on nih-cxr-lt, model tiny, seeds 0, 1, 2"
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "error bar: ± sd over seeds" in labels and any(label.startswith("published (Holste") for label in labels)
    published = [c for c in ax1.collections if c.get_offsets().shape == (2, 2)]
    assert published and sorted(published[0].get_offsets()[:, 1].tolist()) == [0.115, 0.260]
    assert ax1.get_ylabel() == "balanced accuracy on test (bAcc)" and "balanced-test" in ax2.get_ylabel()
    assert _legend_outside_every_axes(fig)
    plt.close(fig)


def test_the_comparison_figure_of_synthetic_runs_says_so_and_draws_no_published_value(tmp_path):
    table = collect([fake_run(tmp_path, "a", "ce", 0, 0.1, synthetic=True)])
    fig = suite_comparison(table, table.attrs["title"])
    assert "SYNTHETIC" in fig._suptitle.get_text()
    assert not fig.axes[0].collections or all("published" not in t.get_text() for t in fig.legends[0].get_texts())
    plt.close(fig)


def _config(**settings):
    return {"config": {"seed": 0, "model": "tiny", "image_size": 64, "lr": 1e-4, "epochs": 40, **settings}}


def test_rows_trained_with_other_settings_get_a_note_naming_each_setting_and_its_value_per_method(tmp_path):
    runs = [fake_run(tmp_path, "asl", "asl", 0, 0.2, **_config(drw_epoch=5, out="a", init_from="")),
            fake_run(tmp_path, "bce", "bce", 0, 0.3, **_config()),
            fake_run(tmp_path, "rw", "rw-bce", 0, 0.1, **_config(image_size=32, lr=1e-2, epochs=2, drw_epoch=9,
                                                                 out="b", init_from="x", workers=1))]
    note = ("Settings differ between rows: epochs 40 (asl, bce), 2 (rw-bce); image_size 64 (asl, bce), 32 (rw-bce); "
            "lr 0.0001 (asl, bce), 0.01 (rw-bce).")
    out = render(collect(runs))
    assert note in out["md"].split("\n\n")[-1].splitlines()
    assert r"image\_size 64 (asl, bce), 32 (rw-bce)" in out["tex"]
    assert "Settings differ" not in render(collect(runs[:2]))["md"]  # method-specific and where-run fields only


def test_two_runs_of_one_seed_from_other_stage1_runs_are_refused_saying_so_and_what_to_do(tmp_path):
    runs = [fake_run(tmp_path, "crt-a", "crt-bce", 0, 0.2, **_config(init_from="suite/bce-seed0")),
            fake_run(tmp_path, "crt-b", "crt-bce", 0, 0.3, **_config(init_from="other/bce-seed0"))]
    with pytest.raises(UsageError, match=f"^{runs[0]} and {runs[1]} are both crt-bce seed 0 but differ in their "
                       "stage-1 run \\(--init-from suite/bce-seed0 vs other/bce-seed0\\); pass the runs of one "
                       "stage-1 run, or put them in separate tables$"):
        collect(runs)


def test_the_table_command_says_which_files_it_wrote_and_its_help_shows_no_default_for_the_required_out(tmp_path,
                                                                                                        capsys):
    from eval.__main__ import main

    run = fake_run(tmp_path, "ce", "ce", 0, 0.2)
    assert main(["table", str(run), "--out", str(tmp_path / "t")]) == 0
    written = f"written: {tmp_path}/t.md, {tmp_path}/t.tex, {tmp_path}/t.csv, {tmp_path}/t.png, {tmp_path}/t.pdf"
    assert capsys.readouterr().out.splitlines()[-1] == written
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(SystemExit):
        main(["table", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--out OUT prefix: writes PREFIX.md, .tex, .csv, .png, .pdf (required) --resamples" in help_text
    assert "(default: None)" not in help_text


def test_marks_compare_the_values_as_printed_so_numbers_that_print_alike_share_the_mark(tmp_path):
    assert ranks(pd.Series([0.3004, 0.3001, 0.2996, 0.2])).tolist() == [1, 1, 1, 2]
    runs = [fake_run(tmp_path, "a", "ce", 0, 0.3004), fake_run(tmp_path, "b", "rw-ce", 0, 0.2996),
            fake_run(tmp_path, "c", "crt", 0, 0.25)]
    rows = md_rows(render(collect(runs))["md"])
    assert rows["ce"][5] == rows["rw-ce"][5] == "**0.300**" and rows["crt"][5] == "<u>0.250</u>"
