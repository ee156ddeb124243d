"""The command line as a user meets it: exit codes and messages that name the file and the fix."""
import shutil
import subprocess
import sys

from shards.index import read_index


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
