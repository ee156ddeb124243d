"""The command line as a user meets it: exit codes and messages that name the file and the fix."""
import json
import shutil
import subprocess
import sys

import pytest

from shards.index import read_index
from train.__main__ import main as train_main

from conftest import tiny_flags


def ingest(*args):
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, args)], capture_output=True, text=True)


def test_build_with_a_missing_label_file_exits_2_naming_it(raw_dir, tmp_path):
    labels = tmp_path / "labels"
    shutil.copytree(raw_dir / "labels", labels)
    (labels / "nih-cxr-lt_single-label_balanced-val.csv").unlink()
    r = ingest("build-shards", "--images", raw_dir, "--labels", labels, "--out", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "nih-cxr-lt_single-label_balanced-val.csv" in r.stderr
    assert "Traceback" not in r.stderr


def test_verify_exits_1_listing_problems_and_0_when_clean(shards_copy):
    assert ingest("verify", shards_copy).returncode == 0
    index, _ = read_index(shards_copy / "index.parquet")
    (shards_copy / index["shard"].iloc[0]).write_bytes(b"")
    r = ingest("verify", shards_copy)
    assert r.returncode == 1 and "PROBLEM" in r.stdout and "problem(s)" in r.stdout


def test_stats_prints_the_table(shards_dir):
    r = ingest("stats", shards_dir)
    assert r.returncode == 0 and "No Finding" in r.stdout and "imbalance ratio" in r.stdout


def one_line_error(capsys, code: int, *text) -> None:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(t in err for t in text), err


def test_a_single_label_method_on_multi_label_shards_is_one_line_and_leaves_no_run_dir(ml_shards_dir, tmp_path,
                                                                                      capsys):
    code = train_main(["fit", "--shards", str(ml_shards_dir), "--out", str(tmp_path / "run"), *tiny_flags()])
    one_line_error(capsys, code, "--method ce is a single-label method", "use one of: bce, rw-bce")
    assert not (tmp_path / "run").exists()


def test_a_fit_that_fails_at_start_leaves_no_run_dir(tmp_path, capsys):
    code = train_main(["fit", "--shards", str(tmp_path / "nope"), "--out", str(tmp_path / "run"), *tiny_flags()])
    one_line_error(capsys, code, "nope")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, text", [
    (["bench"], "bench needs --shards"), (["fit", "--out", "o"], "fit needs --shards"),
    (["fit", "--shards", "s", "--out", "o", "--image-size", "-64"], "--image-size -64: must be >= 1"),
    (["fit", "--shards", "s", "--out", "o", "--rrc-scale", "0"], "--rrc-scale 0.0: must be > 0"),
    (["suite", "--shards", "s", "--out", "o", "--seeds", "a"], "--seeds 'a'"),
    (["suite", "--shards", "s", "--out", "o", "--methods", ","], "--methods ','")])
def test_a_bad_or_missing_flag_is_one_line_naming_it(args, text, capsys):
    one_line_error(capsys, train_main(args), text)


def test_loader_dali_without_dali_is_one_line(shards_dir, tmp_path, capsys, monkeypatch):
    import train.loop.loaders

    monkeypatch.setattr(train.loop.loaders, "dali_available", lambda: False)
    code = train_main(["fit", "--shards", str(shards_dir), "--out", str(tmp_path / "r"), *tiny_flags(loader="dali")])
    one_line_error(capsys, code, "--loader dali", "--loader torch")


@pytest.mark.parametrize("command, args, text", [
    ("eval", ["report", "r", "--resamples", "0"], "--resamples: must be >= 1, got 0"),
    ("train", ["predict", "r", "--images", "i", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    ("train", ["predict", "r", "--images", "i", "--workers", "-1"], "--workers: must be >= 0, got -1"),
    ("train", ["bench", "--shards", "s", "--steps", "x"], "--steps: 'x' is not a whole number"),
    ("ingest", ["build-shards", "--images", "i", "--labels", "l", "--out", "o", "--shard-size", "0"],
     "--shard-size: must be >= 1, got 0")])
def test_a_whole_number_flag_out_of_range_is_refused_when_parsed_naming_it(command, args, text, capsys):
    from eval.__main__ import main as eval_main
    from ingest.__main__ import main as ingest_main

    with pytest.raises(SystemExit) as e:
        {"eval": eval_main, "train": train_main, "ingest": ingest_main}[command](args)
    assert e.value.code == 2 and text in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_is_reproduced_from_its_config_json_with_flags_overriding_it(stage1_run, tmp_path, capsys):
    new = tmp_path / "new"
    assert train_main(["fit", "--config", str(stage1_run / "config.json"), "--out", str(new), "--workers", "1"]) == 0
    old_cfg = json.loads((stage1_run / "config.json").read_text())["config"]
    new_cfg = json.loads((new / "config.json").read_text())["config"]
    assert new_cfg == {**old_cfg, "out": str(new), "workers": 1}


def help_text(*argv) -> str:
    from train.__main__ import parser

    p = parser()
    for name in argv[:-1]:  # a subcommand's own parser
        p = next(a for a in p._subparsers._group_actions if a.dest == "cmd").choices[name]
    return p.format_help()


def test_help_texts_list_every_subcommand_and_describe_each(capsys):
    top = help_text("")
    description = top.split("\n\n")[1]  # after the usage lines
    assert all(cmd in description for cmd in ("fit", "suite", "bench", "methods", "models", "predict", "export"))
    assert "list the methods:" in help_text("methods", "")
    export = help_text("export", "")
    assert "torch.export's .pt2 (recommended" in export and "(default: export)" in export


def test_suite_help_shows_no_default_for_its_required_flag():
    suite = " ".join(help_text("suite", "").split())
    assert "(required)" in suite and "(required) (default: None)" not in suite


def test_bench_help_lists_no_training_only_flag():
    listed = {line.split()[0].rstrip(",") for line in help_text("bench", "").splitlines()
              if line.startswith("  --")}  # argparse's option lines; wrapped help text is indented further
    for gone in ("--epochs", "--patience", "--mixup-alpha", "--lr", "--drw-epoch", "--resume", "--tensorboard",
                 "--schedule", "--warmup-epochs"):
        assert gone not in listed, gone
    for kept in ("--batch-size", "--image-size", "--loader", "--precision", "--steps", "--optimizer", "--ema-decay"):
        assert kept in listed, kept
