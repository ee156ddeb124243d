import dataclasses

import pytest

from train.suite import plan, suite

from conftest import tiny_fit


def test_plan_runs_stage_one_first_and_adds_ce_for_two_stage_methods():
    assert plan(["tau-norm", "rw-ce", "crt"]) == ["ce", "rw-ce", "tau-norm", "crt"]
    with pytest.raises(ValueError, match="unknown method 'xx'"):
        plan(["xx"])


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
