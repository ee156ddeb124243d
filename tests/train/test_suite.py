import dataclasses
import json

import pandas as pd
import pytest

from shards.errors import UsageError

from train.methods.registry import PAPER_METHODS, methods_for
from train.suite import parse_methods, parse_seeds, plan, suite

from conftest import tiny_fit


def test_plan_runs_stage_one_first_and_adds_ce_for_two_stage_methods():
    assert plan(["tau-norm", "rw-ce", "crt"]) == ["ce", "rw-ce", "tau-norm", "crt"]
    with pytest.raises(UsageError, match="unknown method 'xx'"):
        plan(["xx"])


@pytest.mark.slow
def test_an_interrupted_suite_reruns_without_redoing_finished_runs(shards_dir, tmp_path):
    base = dataclasses.replace(tiny_fit(shards_dir, "", epochs=1))
    out = tmp_path / "suite"
    calls = []

    def stop(epoch, step):
        calls.append(step)
        return len(calls) == 9  # part-way through the second run

    assert suite(base, out, ["ce", "rw-ce", "crt", "tau-norm"], [0], stop=stop) == "interrupted"
    ce_done = (out / "ce-seed0" / "summary.json").stat().st_mtime_ns
    assert not (out / "rw-ce-seed0" / "summary.json").exists() and (out / "rw-ce-seed0" / "last.pt").exists()
    assert suite(base, out, ["ce", "rw-ce", "crt", "tau-norm"], [0]) == "finished"
    assert (out / "ce-seed0" / "summary.json").stat().st_mtime_ns == ce_done
    for m in ("ce", "rw-ce", "crt", "tau-norm"):
        assert (out / f"{m}-seed0" / "summary.json").exists()
    table = (out / "results.md").read_text()
    assert all(f"| {m} |" in table for m in ("ce", "rw-ce", "crt", "tau-norm")) and "**" in table
    assert (out / "results.tex").exists() and (out / "results.csv").exists()


@pytest.mark.slow
def test_a_suite_with_other_settings_is_refused_naming_them_or_rerun_into_a_new_dir(shards_dir, tmp_path):
    out = tmp_path / "suite"
    assert suite(tiny_fit(shards_dir, "", epochs=1), out, ["ce"], [0]) == "finished"
    changed = tiny_fit(shards_dir, "", epochs=2, lr=0.01)
    with pytest.raises(UsageError, match=r"ce-seed0 was trained with other settings \(epochs: 1 -> 2; "
                                         r"lr: 0.001 -> 0.01\); rerun the suite with --rerun-changed"):
        suite(changed, out, ["ce"], [0])
    assert suite(changed, out, ["ce"], [0], rerun_changed=True) == "finished"
    new = json.loads((out / "ce-seed0-2" / "summary.json").read_text())
    assert (new["config"]["epochs"], new["config"]["lr"]) == (2, 0.01)
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 1 and table["bacc"].iloc[0] == pytest.approx(new["test"]["bacc"], abs=1e-3)
    assert suite(changed, out, ["ce"], [0], rerun_changed=True) == "finished"  # the new dir is reused
    assert not (out / "ce-seed0-3").exists()


def test_seeds_and_methods_that_name_nothing_are_one_line_each(shards_dir):
    with pytest.raises(UsageError, match="--seeds 'a': not a comma-separated list of integers"):
        parse_seeds("a")
    with pytest.raises(UsageError, match="--methods ',': no method names"):
        parse_methods(",", shards_dir)


def test_all_means_the_methods_of_the_shards_task(shards_dir, ml_shards_dir):
    assert parse_methods("all", shards_dir) == list(PAPER_METHODS)
    assert parse_methods("all", ml_shards_dir) == methods_for("multi-label") == [
        "bce", "rw-bce", "cb-bce", "focal-bce", "asl", "distribution-balanced", "logit-adjusted-bce", "ca-bce",
        "mixup-bce", "crt-bce"]
    assert plan(["crt-bce", "asl"], "multi-label") == ["bce", "asl", "crt-bce"]
    with pytest.raises(UsageError, match="--methods ce is a single-label method"):
        parse_methods("bce,ce", ml_shards_dir)


@pytest.mark.slow
def test_a_multi_label_suite_trains_bce_first_for_crt_bce_and_writes_the_map_table(ml_shards_dir, tmp_path):
    out = tmp_path / "suite"
    assert suite(tiny_fit(ml_shards_dir, "", epochs=1), out, ["crt-bce", "asl"], [0]) == "finished"
    crt = json.loads((out / "crt-bce-seed0" / "config.json").read_text())["config"]
    assert crt["init_from"] == str(out / "bce-seed0")
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["method"]) == ["asl", "bce", "crt-bce"]
    summaries = {m: json.loads((out / f"{m}-seed0" / "summary.json").read_text()) for m in table["method"]}
    for _, row in table.iterrows():
        assert row.filter(like="mAP").notna().all()
        assert summaries[row["method"]]["task"] == "multi-label"
