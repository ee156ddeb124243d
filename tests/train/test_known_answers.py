"""Whole runs equal the answers recorded at an earlier commit (tests/known_answers.py says which and how):
predictions and metrics.csv to the bit, and a checkpoint written then resumes now to the same result."""
import json
import shutil

import numpy as np
import pytest

from known_answers import DATA, INTERRUPTED_FILES, RUNS, answers, cpu_model, fit_command, train

RECORD = json.loads((DATA / "record.json").read_text())


def recorded(name: str) -> dict:
    with np.load(DATA / "predictions.npz") as arrays:
        out = {k.split("/", 1)[1]: arrays[k] for k in arrays.files if k.startswith(name + "/")}
    text = RECORD["metrics"].get(f"{name}/metrics.csv")
    return {**out, **({"metrics.csv": text} if text is not None else {})}


def assert_equal_to_the_record(name: str, got: dict) -> None:
    want = recorded(name)
    assert sorted(got) == sorted(want), name
    same_cpu = cpu_model() == RECORD["cpu"]
    for key, value in want.items():
        if key.endswith(".logits") and not same_cpu:  # another CPU's kernels may round differently
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value, err_msg=f"{name} {key}")
        elif same_cpu:
            assert got[key] == value, f"{name} {key}"


@pytest.fixture(scope="module")
def shards(shards_dir, ml_shards_dir):
    dirs = {"single": shards_dir, "multi": ml_shards_dir}
    for kind, root in dirs.items():
        sha = json.loads((root / "manifest.json").read_text())["index_sha256"]
        if sha != RECORD["index_sha256"][kind]:  # the synthetic images are encoded by this machine's Pillow
            pytest.skip(f"the test shards differ from the recording's ({kind} index {sha[:12]} vs "
                        f"{RECORD['index_sha256'][kind][:12]}): another Pillow/libjpeg; record again")
    return dirs


@pytest.fixture(scope="module")
def runs(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("known-answers")
    train(shards, out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_a_run_gives_the_recorded_predictions_and_metrics_to_the_bit(runs, name):
    assert_equal_to_the_record(name, answers(runs / name))


@pytest.mark.slow
def test_a_checkpoint_written_at_the_recorded_commit_resumes_to_the_recorded_result(shards, tmp_path):
    import subprocess

    run = tmp_path / "ce"
    run.mkdir()
    for name in INTERRUPTED_FILES:
        shutil.copy(DATA / "interrupted-ce" / name, run / name)
    done = subprocess.run(fit_command(shards["single"], run, "ce", tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed" in (run / "train.log").read_text()
    assert_equal_to_the_record("ce", answers(run))
